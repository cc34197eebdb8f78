"""auto-deploy: deploy stacks to the live blue/green Docker Swarm cluster over mutual TLS.

Its version is the toolkit's, from the git tag: autocore.version.toolkit_version().
"""
