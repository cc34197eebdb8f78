"""Export the OpenAPI document generated from the code, or check that the committed one is current.

    python -m {{ cookiecutter.__package_name }}.openapi --write openapi.json   # regenerate
    python -m {{ cookiecutter.__package_name }}.openapi --check openapi.json   # exit 1 when it is out of date
    python -m {{ cookiecutter.__package_name }}.openapi                        # print it
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .app import create_app


def document() -> dict[str, Any]:
    """The OpenAPI document of a fresh app."""
    return create_app().openapi()


def render(spec: dict[str, Any]) -> str:
    """The document as committed: two-space JSON with a final newline."""
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write, check or print the document."""
    parser = argparse.ArgumentParser(
        prog={{ ('python -m ' ~ cookiecutter.__package_name ~ '.openapi') | py_str(8) }},
        description="Export the OpenAPI document, or check the committed one.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", metavar="FILE", type=Path, help="write the document to FILE")
    mode.add_argument("--check", metavar="FILE", type=Path, help="fail unless FILE holds the current document")
    args = parser.parse_args(argv)
    spec = document()
    if args.write:
        args.write.write_text(render(spec), encoding="utf-8")
        return 0
    if args.check:
        try:
            committed = json.loads(args.check.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"Error: cannot read {args.check}: {exc}; run 'make spec-write'", file=sys.stderr)
            return 1
        if committed != json.loads(render(spec)):  # as JSON: integer keys become strings
            print(f"Error: {args.check} is not current: run 'make spec-write' and commit it", file=sys.stderr)
            return 1
        print(f"{args.check} is current")
        return 0
    sys.stdout.write(render(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
