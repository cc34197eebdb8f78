"""``auto-pipelines``: the command line. The library raises; only this module prints and exits.

Exit codes: 0 every file is clean (warnings alone do not fail); 2 bad input (a missing or unparsable
file, a bad command line); 3 at least one file has lint errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from deployer.messages import OneLineArgumentParser, one_line
from pipelines.errors import EXIT_BAD_INPUT, EXIT_ISSUES, EXIT_OK, PipelinesError
from pipelines.lint import SEVERITY_ERROR, SEVERITY_WARNING, Issue, lint_file

EXIT_CODES_HELP = """exit codes:
  0  every file is clean (warnings, such as a needs: target that may come from an include:, do not fail)
  2  bad input: a missing, unreadable or unparsable file (invalid YAML, a duplicate key), a bad command line
  3  at least one file has lint errors"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``auto-pipelines``."""
    parser = OneLineArgumentParser(
        prog="auto-pipelines",
        description="Check GitLab CI files and the toolkit's CI/CD components, offline.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)
    p = sub.add_parser(
        "lint",
        help="lint GitLab CI files / CI/CD components offline: GitLab's CI schema, stages, needs, extends, "
        "!reference, spec: inputs",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help=".gitlab-ci.yml or a component's template .yml")
    p.add_argument("--json", action="store_true", help="print a JSON list of results on stdout")
    return parser


def _lint(args: argparse.Namespace) -> int:
    results: dict[str, list[Issue]] = {}
    failed = 0
    for file in args.files:
        try:
            results[file] = lint_file(file)
        except PipelinesError as exc:
            print(f"Error: {one_line(str(exc))}", file=sys.stderr)
            failed += 1
    errors = sum(i.severity == SEVERITY_ERROR for issues in results.values() for i in issues)
    warnings = sum(i.severity == SEVERITY_WARNING for issues in results.values() for i in issues)
    if args.json:
        report = [
            {
                "file": file,
                "ok": not any(i.severity == SEVERITY_ERROR for i in issues),
                "issues": [i.as_dict() for i in issues],
            }
            for file, issues in results.items()
        ]
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        for issues in results.values():
            for issue in issues:
                print(issue)
        clean = sum(not any(i.severity == SEVERITY_ERROR for i in issues) for issues in results.values())
        summary = (
            f"{len(results)} file(s) checked: {clean} clean, {len(results) - clean} with errors; "
            f"{errors} error(s), {warnings} warning(s)"
        )
        if failed:
            summary += f", {failed} unreadable"
        print(summary)
    if failed:
        return EXIT_BAD_INPUT
    return EXIT_ISSUES if errors else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``auto-pipelines``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return _lint(args)
    except PipelinesError as exc:
        print(f"Error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
