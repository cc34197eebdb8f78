"""``auto-docs``: the command line. The library raises; only this module prints and exits.

Exit codes: 0 every spec is valid; 2 bad input (missing or unparsable file, bad command line);
3 at least one spec has issues.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from docgen.errors import EXIT_BAD_INPUT, EXIT_INVALID_SPEC, EXIT_OK, DocgenError
from docgen.validate import Result, duplicate_operation_ids, load_spec, validate_file

EXIT_CODES_HELP = """exit codes:
  0  every spec is valid
  2  bad input: a missing or unparsable file, a bad command line
  3  at least one spec has issues"""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that exits 2 with one ``Error:`` line, like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"Error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``auto-docs``."""
    parser = _ArgumentParser(
        prog="auto-docs",
        description="Validate and publish the services' Swagger 2.0 / OpenAPI 3.x specs.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)
    p = sub.add_parser(
        "validate",
        help="validate specs offline (nothing is fetched); the service is each file's stem",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("specs", nargs="+", metavar="SPEC", help="Swagger 2.0 / OpenAPI 3.0 / 3.1 file, JSON or YAML")
    p.add_argument("--json", action="store_true", help="print a JSON list of results on stdout")
    return parser


def _validate(args: argparse.Namespace) -> int:
    results: list[Result] = []
    failed = 0
    for spec in args.specs:
        try:
            results.append(validate_file(spec))
        except DocgenError as exc:
            print(f"Error: {_one_line(str(exc))}", file=sys.stderr)
            failed += 1
    if len(results) > 1:
        # The portal serves every service together: an operationId must be unique across them too.
        documents = {r.service: load_spec(r.source)[0] for r in results}
        by_service = {r.service: r for r in results}
        for issue in duplicate_operation_ids(documents, {r.service: r.source for r in results}):
            result = by_service[issue.service]
            if issue not in result.issues:
                result.issues.append(issue)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2, sort_keys=True))
    else:
        for result in results:
            for issue in result.issues:
                print(issue)
        valid = sum(r.ok for r in results)
        issues = sum(len(r.issues) for r in results)
        summary = f"{len(results)} spec(s) checked: {valid} valid, {len(results) - valid} with {issues} issue(s)"
        if failed:
            summary += f", {failed} unreadable"
        print(summary)
    if failed:
        return EXIT_BAD_INPUT
    return EXIT_OK if all(r.ok for r in results) else EXIT_INVALID_SPEC


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``auto-docs``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args)
        raise AssertionError(args.command)
    except DocgenError as exc:
        print(f"Error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130


def _one_line(message: str) -> str:
    return " ".join(message.split())
