"""``auto-docs``: not built yet. It says so and exits 2 rather than pretend."""

import sys


def main(argv: list[str] | None = None) -> int:
    """Say that auto-docs is not available yet."""
    message = "auto-docs is not available yet (planned: the docgen issue); nothing was done."
    print(f"Error: {message}", file=sys.stderr)
    return 2
