"""``auto-pipelines``: not built yet. It says so and exits 2 rather than pretend."""

import sys


def main(argv: list[str] | None = None) -> int:
    """Say that auto-pipelines is not available yet."""
    message = "auto-pipelines is not available yet (planned: the pipelines issue); nothing was done."
    print(f"Error: {message}", file=sys.stderr)
    return 2
