"""``auto-docs``: the command line. The library raises; only this module prints and exits.

Exit codes: 0 success (``build``/``merge``: also with quarantined services, reported as warnings);
2 bad input (missing or unparsable file or manifest, bad command line); 3 a spec has issues
(``validate``), or anything ``--strict`` refuses; 4 the environment-state service could not be asked;
5 the site build failed (the previous site is left as it was).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from autocore.ci_log import section
from autocore.cli import OneLineArgumentParser, error_line, run_command
from autocore.text import display
from autocore.version import add_version_option
from docgen.errors import EXIT_BAD_INPUT, EXIT_INVALID_SPEC, EXIT_OK, ConfigError

# The library is imported by the command that needs it, not here: ``auto-docs --help`` stays instant.

EXIT_CODES_HELP = """exit codes:
  0  success; build and merge also succeed with quarantined services (reported as warnings)
  2  bad input: a missing or unparsable file or manifest, a bad command line
  3  validate: at least one spec has errors (warnings alone exit 0); build/merge --strict: a quarantined service,
     scrubbed text or a warning
  4  the environment-state service (--from-env) could not be asked; nothing was written
  5  the site build failed; the previous site was left as it was"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``auto-docs``."""
    parser = OneLineArgumentParser(
        prog="auto-docs",
        description="Validate and publish the services' Swagger 2.0 / OpenAPI 3.x specs.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version_option(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)
    p = sub.add_parser(
        "validate",
        help="validate specs offline (nothing is fetched); the service is each file's stem",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("specs", nargs="+", metavar="SPEC", help="Swagger 2.0 / OpenAPI 3.0 / 3.1 file, JSON or YAML")
    p.add_argument("--json", action="store_true", help="print a JSON list of results on stdout")
    for name, help_text in (
        ("build", "validate, merge and build the Sphinx site (GitLab Pages) from a manifest or an environment"),
        ("merge", "validate and merge every service's spec into one OpenAPI 3.1 document"),
    ):
        p = sub.add_parser(
            name, help=help_text, epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        source = p.add_argument_group("input (at least one)")
        source.add_argument(
            "--manifest", metavar="FILE", help="services.yml, or a service's own auto-service.yml (one-service portal)"
        )
        source.add_argument(
            "--from-env",
            metavar="ENV",
            help="document the live services of ENV, as the environment-state service lists them (AUTO_STATE_URL, "
            "AUTO_STATE_CA); with --manifest, its title, guide and scrub rules apply too",
        )
        if name == "build":
            p.add_argument("--out", default="public", metavar="DIR", help="the site's folder (default: public)")
        else:
            p.add_argument("--out", required=True, metavar="FILE", help="the merged spec: .json, .yaml or .yml")
        p.add_argument(
            "--strict", action="store_true", help="exit 3 on any quarantined service, scrubbed text or warning"
        )
        p.add_argument("--json-report", metavar="FILE", help="write every service's result as JSON")
        p.add_argument(
            "--cache", default=".auto-docs-cache", metavar="DIR", help="content-hash cache (default: .auto-docs-cache)"
        )
        p.add_argument("--no-cache", action="store_true", help="validate everything again (the cache is not read)")
        p.add_argument(
            "--jobs", type=int, default=0, metavar="N", help="spec validation processes (default: one per core)"
        )
        if name == "build":
            p.add_argument(
                "--sphinx-jobs",
                type=int,
                default=1,
                metavar="N",
                help="Sphinx's own processes (default 1: on two cores its parallel writing is no faster)",
            )
        p.add_argument("--ca-file", metavar="PEM", help="CA bundle for fetching https:// docs and specs")
    return parser


def _validate(args: argparse.Namespace) -> int:
    # Not around --json: stdout is then one JSON document and nothing else.
    with (
        nullcontext()
        if args.json
        else section(
            "auto_docs_validate",
            f"auto-docs validate: {len(args.specs)} spec(s)",
            stream=sys.stdout,
            header_outside_ci=False,
        )
    ):
        return _validate_specs(args)


def _validate_specs(args: argparse.Namespace) -> int:
    from docgen.validate_many import validate_files

    validation = validate_files(args.specs)
    for error in validation.unreadable:
        print(error_line(error), file=sys.stderr)
    results = validation.results
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2, sort_keys=True))
    else:
        for result in results:
            for issue in result.issues:
                print(issue)
        valid = sum(r.ok for r in results)
        issues = sum(len(r.issues) for r in results)
        summary = f"{len(results)} spec(s) checked: {valid} valid, {len(results) - valid} with {issues} issue(s)"
        if validation.unreadable:
            summary += f", {len(validation.unreadable)} unreadable"
        print(summary)
    if validation.unreadable:
        return EXIT_BAD_INPUT
    return EXIT_OK if validation.ok else EXIT_INVALID_SPEC


def _build(args: argparse.Namespace) -> int:
    if args.jobs < 0:
        raise ConfigError("--jobs must be 0 (one per core) or more")
    if getattr(args, "sphinx_jobs", 1) < 1:
        raise ConfigError("--sphinx-jobs must be 1 or more")
    out = Path(args.out)
    if args.command == "merge" and out.suffix.lower() not in (".json", ".yaml", ".yml"):
        raise ConfigError(f"--out {out}: name the merged spec .json, .yaml or .yml")
    from autocore.files import write_atomic
    from docgen.environment import resolve_manifest
    from docgen.portal import gather, publish_site, summary_line
    from docgen.sources import Fetcher

    manifest, notes = resolve_manifest(args.manifest, args.from_env, os.environ)
    cache_dir = Path(args.cache)
    fetcher = Fetcher(ca_file=args.ca_file)
    jobs = args.jobs or os.cpu_count() or 1
    names = len(manifest.services)
    with section(
        "auto_docs_gather", f"auto-docs: read, validate and merge {names} service(s)", header_outside_ci=False
    ):
        portal = gather(manifest, fetcher=fetcher, cache_dir=None if args.no_cache else cache_dir, jobs=jobs)
        portal.warnings += notes
        print(summary_line(portal), file=sys.stderr)
        refused = portal.strict_failures()
        for line in [*refused, *portal.warnings]:
            print(f"warning: {display(line)}", file=sys.stderr)
    code = EXIT_OK
    if args.strict and refused:
        print(f"Error: --strict: {len(refused)} problem(s) above; nothing was published", file=sys.stderr)
        code = EXIT_INVALID_SPEC
    elif args.command == "merge":
        write_atomic(out, portal.merged_document.serialised(out.suffix.lower()))
        print(f"merged spec written to {out}", file=sys.stderr)
    else:
        site_header = f"auto-docs: build the Sphinx site into {out}/"
        with section("auto_docs_site", site_header, collapsed=True, header_outside_ci=False):
            publish_site(portal, out, cache_dir=cache_dir, jobs=args.sphinx_jobs)
            for line in portal.site.warnings:
                print(f"warning: sphinx: {display(line)}", file=sys.stderr)
        print(f"site written to {out}/ ({portal.site.docs_read} page(s) rebuilt)", file=sys.stderr)
    if args.json_report:
        report = portal.report()
        report["exit_code"] = code
        write_atomic(Path(args.json_report), (json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
    return code


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "validate":
        return _validate(args)
    return _build(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``auto-docs``; returns the exit code."""
    return run_command(build_parser(), _dispatch, argv)
