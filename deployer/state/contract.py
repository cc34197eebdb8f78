"""The environment-state contract's constants (``contract.yaml`` in words a program can use).

One module for the client, the server and the deployer's compose checks, so that what one side sends
the other side accepts by construction.
"""

from __future__ import annotations

COLOURS = ("blue", "green")
# What a deploy may target: the live colour, the idle one, or a colour by name.
DEPLOY_TARGETS = ("live", "idle", *COLOURS)


def other_colour(colour: str) -> str:
    """``green`` for ``blue`` and vice versa."""
    return "green" if colour == "blue" else "blue"
