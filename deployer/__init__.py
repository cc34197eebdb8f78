"""auto-deploy: deploy stacks to the live blue/green Docker Swarm cluster over mutual TLS."""

__version__ = "0.1.0"
