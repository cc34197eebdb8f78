"""Orchestration tests: deploy, rollback, switch and lock decisions against real local components.

The environment-state service is the real server on 127.0.0.1; the Docker Engine and HAProxy are
scripted servers on unix sockets; the docker CLI is a recording runner. Nothing needs root.
"""
