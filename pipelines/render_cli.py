"""The ``auto-pipelines render`` subcommand: its arguments and how it reports (the library is ``render``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autocore.ci_log import section
from pipelines.errors import EXIT_ISSUES, EXIT_OK, RenderCheckFailed
from pipelines.locations import DEFAULT_COMPONENT_PATH, TEMPLATES_DIR

RENDER_EXIT_CODES = """exit codes:
  0  rendered (and written, or unchanged with --check)
  2  bad input: a missing or bad descriptor, an unknown component or input, a value its spec refuses
  3  the rendered pipeline has lint errors (nothing is written), or --check found the file out of date"""


def add_render_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``render`` on the ``auto-pipelines`` subcommands."""
    p = sub.add_parser(
        "render",
        help="write a service's .gitlab-ci.yml from its descriptor (auto-service.yml, pipeline:) and the chosen "
        "components",
        description="Render a service's .gitlab-ci.yml: the toolkit's CI/CD components it includes, with their "
        "inputs checked against each component's spec, linted before anything is written.",
        epilog=RENDER_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("descriptor", nargs="?", default="auto-service.yml", help="the service's descriptor")
    p.add_argument(
        "--components",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        help="comma-separated, e.g. build,test,deploy-staging,pages (default: the descriptor's pipeline.components)",
    )
    p.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="COMPONENT.INPUT=VALUE",
        help="set one component input, over the descriptor's (repeatable)",
    )
    p.add_argument("--version", dest="component_version", help="the components' version to pin (default: 1)")
    p.add_argument(
        "--component-path",
        default=DEFAULT_COMPONENT_PATH,
        metavar="HOST/GROUP/PROJECT",
        help=f"where GitLab finds the components; the host a domain name or $CI_SERVER_FQDN "
        f"(default: {DEFAULT_COMPONENT_PATH})",
    )
    p.add_argument("--templates", default=str(TEMPLATES_DIR), help="the toolkit's templates/ directory")
    p.add_argument("--out", help="the file to write (default: .gitlab-ci.yml beside the descriptor; - for stdout)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="write nothing; exit 3 with a diff when --out is stale")
    mode.add_argument("--dry-run", action="store_true", help="print what would be written; write nothing")
    return p


def run_render(args: argparse.Namespace) -> int:
    """Run ``auto-pipelines render``; returns the exit code. Raises ``PipelinesError`` on bad input."""
    from pipelines.render import drift, parse_input_assignment, render, write_atomically

    out = args.out or str(Path(args.descriptor).parent / ".gitlab-ci.yml")
    overrides = [parse_input_assignment(text) for text in args.inputs]
    with section("auto_pipelines_render", f"auto-pipelines render {args.descriptor}", header_outside_ci=False):
        result = render(
            args.descriptor,
            components=args.components,
            overrides=overrides,
            version=args.component_version,
            component_path=args.component_path,
            templates_dir=args.templates,
            out=out,
        )
    for issue in result.issues:
        print(issue, file=sys.stderr)
    if not result.ok:
        print(f"Error: the rendered pipeline has lint errors; {out} was not written", file=sys.stderr)
        return EXIT_ISSUES
    names = ", ".join(c.name for c in result.components)
    if out == "-" or args.dry_run:
        sys.stdout.write(result.text)
        if args.dry_run:
            print(f"dry run: {out} not written ({names})", file=sys.stderr)
        return EXIT_OK
    if args.check:
        diff = drift(result, out)
        if diff:
            sys.stdout.writelines(diff)
            raise RenderCheckFailed(f"{out} is out of date with {args.descriptor}: run auto-pipelines render")
        print(f"{out} is up to date ({names})", file=sys.stderr)
        return EXIT_OK
    unchanged = not drift(result, out)
    if not unchanged:
        write_atomically(result.text, out)
    print(f"{out}: {'unchanged' if unchanged else 'written'} ({names}; stages {', '.join(result.stages)})")
    return EXIT_OK
