"""``auto-pipelines``: the command line. The library raises; only this module prints and exits.

Exit codes: 0 success (every file is clean; warnings alone do not fail); 2 bad input (a missing or
unparsable file, a bad command line, missing GitLab settings, invalid TLS material); 3 at least one
file has lint errors; 4 the GitLab API refused the request or could not be reached; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from autocore.ci_log import section
from autocore.cli import OneLineArgumentParser, error_line, run_command
from autocore.issues import SEVERITY_ERROR, SEVERITY_WARNING, Issue
from autocore.version import add_version_option
from pipelines.errors import EXIT_BAD_INPUT, EXIT_ISSUES, EXIT_OK, PipelinesConfigError
from pipelines.locations import DEFAULT_COMPONENT_PATH
from pipelines.render_cli import add_render_parser, run_render

EXIT_CODES_HELP = """exit codes (lint: the worst outcome across its files, in the order 4, 3, 2, 0):
  0  every file is clean (warnings, such as a needs: target that may come from an include:, do not fail);
     secrets push / deployment record: done (or, with --dry-run, nothing to report as wrong); release-notes: printed
  2  bad input: a missing, unreadable or unparsable file (invalid YAML, over a budget), a bad command line,
     a changelog with no usable section (missing, repeated, undated, empty) for the release,
     GITLAB_URL / GITLAB_TOKEN / the project missing, invalid TLS material (then nothing is uploaded)
  3  at least one file has lint errors (offline ones, or GitLab's own with --remote), whatever else was refused
  4  the GitLab API refused or is unreachable: token refused (401), no permission (403), project or resource
     not found (404), endpoint removed (410), connection, timeout or TLS verification failure, other errors;
     when secrets push fails part-way, the message says what was and was not changed
  130 interrupted"""

GITLAB_HELP = """GitLab settings (environment):
  GITLAB_URL      GitLab's https address (default: CI_SERVER_URL)
  GITLAB_TOKEN    an access token with scope api; never printed
  CI_PROJECT_ID   the project when --project is not given
  GITLAB_CA_FILE  a CA bundle for GitLab's certificate when --ca-file is not given (TLS is always verified)"""


def _phase(name: str, header: str) -> AbstractContextManager[None]:
    """A collapsible log section (on stderr) under GitLab CI; nothing at all elsewhere."""
    return section(name, header) if os.environ.get("GITLAB_CI") else nullcontext()


def _with_gitlab(p: argparse.ArgumentParser, project_help: str) -> None:
    p.add_argument("--project", metavar="ID_OR_PATH", help=project_help)
    p.add_argument("--ca-file", metavar="FILE", help="CA bundle to verify GitLab's certificate (GITLAB_CA_FILE)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``auto-pipelines``."""
    epilog = f"{GITLAB_HELP}\n\n{EXIT_CODES_HELP}"
    parser = OneLineArgumentParser(
        prog="auto-pipelines",
        description="Check GitLab CI files and the toolkit's CI/CD components, offline or with GitLab's CI lint; "
        "push the Docker TLS files as CI/CD variables; record deployments in GitLab's Environments.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version_option(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)
    p = sub.add_parser(
        "lint",
        help="lint GitLab CI files / CI/CD components offline: GitLab's CI schema, stages, needs, extends, "
        "!reference, spec: inputs; with --remote also with GitLab's CI lint API",
        description="Lint GitLab CI files offline; with --remote, also send each file to GitLab's project CI lint "
        "(a dry run: POST /projects/:id/ci/lint with dry_run=true), or without a project to the global "
        "/ci/lint of GitLab < 16. GitLab's errors and warnings are shown like the offline ones. Component files "
        "(with a spec: header) are not sent: GitLab lints them only when included.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help=".gitlab-ci.yml or a component's template .yml")
    p.add_argument(
        "--json", action="store_true", help="print a JSON list on stdout: one entry per file, refused ones included"
    )
    p.add_argument(
        "--remote",
        action="store_true",
        help="also lint with GitLab's CI lint API, and read include: project: files through GitLab (needs "
        "GITLAB_URL/TOKEN)",
    )
    p.add_argument(
        "--root",
        metavar="DIR",
        help="the repository root that include: local: paths start from (default: the git repository holding "
        "each file; outside one, local includes are not read and what depends on them is a warning)",
    )
    p.add_argument(
        "--component-path",
        default=DEFAULT_COMPONENT_PATH,
        metavar="PATH",
        help=f"where the toolkit's components are included from: include: component: PATH/NAME@VERSION is read "
        f"from the toolkit's templates (default: {DEFAULT_COMPONENT_PATH})",
    )
    p.add_argument(
        "--strict", action="store_true", help="a key written twice in one mapping is an error, not a warning"
    )
    _with_gitlab(p, "the project whose CI lint to use (default: CI_PROJECT_ID; none: the global endpoint)")
    p.add_argument("--ref", help="branch or tag the dry run simulates a pipeline for (default: the default branch)")
    p.set_defaults(handler=_lint)
    add_render_parser(sub).set_defaults(handler=run_render)

    secrets = sub.add_parser(
        "secrets",
        help="CI/CD variables in GitLab",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    secrets_sub = secrets.add_subparsers(dest="secrets_command", required=True, parser_class=OneLineArgumentParser)
    p = secrets_sub.add_parser(
        "push",
        help="upload the Docker TLS files as file-type, protected, environment-scoped variables",
        description="Upload AUTO_DOCKER_CA, AUTO_DOCKER_CERT and AUTO_DOCKER_KEY as project CI/CD variables: type "
        "file, protected, raw, scoped to --environment, masked where GitLab allows (PEM files never: they span "
        "several lines). The material is checked first (the key must belong to the certificate, the CA must "
        "parse); nothing is uploaded when it is not valid. Reports per variable: created, updated (which "
        "attributes) or unchanged; never a value (a certificate's SHA-256 fingerprint at most).",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--environment", required=True, metavar="ENV", help="the environment scope of the variables")
    _with_gitlab(p, "the project (default: CI_PROJECT_ID)")
    p.add_argument(
        "--cert-dir",
        metavar="DIR",
        help="directory with ca.pem, cert.pem, key.pem (default: AUTO_DOCKER_CA/CERT/KEY or AUTO_DOCKER_CERT_PATH)",
    )
    p.add_argument("--dry-run", action="store_true", help="read and compare only; change nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.set_defaults(handler=_secrets_push)

    deployment = sub.add_parser(
        "deployment",
        help="deployments in GitLab's Environments",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    deployment_sub = deployment.add_subparsers(
        dest="deployment_command", required=True, parser_class=OneLineArgumentParser
    )
    p = deployment_sub.add_parser(
        "record",
        help="create a deployment (prints its id), or update its status with --id",
        description="Without --id, create a deployment (POST /projects/:id/deployments) and print its id alone on "
        "stdout, as in ID=$(auto-pipelines deployment record --status running); with --id, update that "
        "deployment's status (PUT /projects/:id/deployments/:id). In CI, --environment, --ref and --sha default to "
        "CI_ENVIRONMENT_NAME, CI_COMMIT_REF_NAME and CI_COMMIT_SHA.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--environment", metavar="ENV", help="the environment (default: CI_ENVIRONMENT_NAME)")
    _with_gitlab(p, "the project (default: CI_PROJECT_ID)")
    p.add_argument("--ref", help="the branch or tag deployed (default: CI_COMMIT_REF_NAME)")
    p.add_argument("--sha", help="the full commit SHA deployed (default: CI_COMMIT_SHA)")
    p.add_argument("--tag", action="store_true", help="--ref is a tag (default: when it is CI_COMMIT_TAG)")
    p.add_argument(
        "--status", required=True, choices=("running", "success", "failed", "canceled"), help="the deployment's status"
    )
    p.add_argument("--id", type=int, dest="deployment_id", metavar="N", help="update this deployment's status")
    p.add_argument("--json", action="store_true", help="print the deployment as JSON on stdout")
    p.set_defaults(handler=_deployment_record)

    p = sub.add_parser(
        "release-notes",
        help="print a release's section of the changelog: the release job's description",
        description="Print the notes of release VERSION: its section of the changelog (Keep a Changelog: "
        '"## [VERSION] - YYYY-MM-DD"), with the link definitions it uses. A version with no section, two, no date '
        "or nothing under its heading is refused (exit 2), so a release never goes out without its notes.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("version", metavar="VERSION", help="the release as its tag names it, e.g. 1.2.0")
    p.add_argument("--changelog", default="CHANGELOG.md", metavar="FILE", help="the changelog (default: %(default)s)")
    p.add_argument("--output", metavar="FILE", help="write the notes to FILE (in one rename) instead of stdout")
    p.set_defaults(handler=_release_notes)
    return parser


# --------------------------------------------------------------------------- lint


def _repository_root(file: str) -> Path | None:
    """The root of the git repository holding ``file`` (where GitLab reads its local includes from), if any."""
    for directory in Path(file).resolve().parents:
        if (directory / ".git").exists():
            return directory
    return None


def _lint(args: argparse.Namespace) -> int:
    from pipelines.gitlab_yaml import load_pipeline
    from pipelines.includes import IncludeSettings
    from pipelines.lint import LintOptions, lint_file
    from pipelines.locations import check_component_path

    client = settings = reader = None
    if args.remote:
        # GitLab modules are imported on demand: python-gitlab would triple the start-up time of offline lint.
        from pipelines.gitlab_api import connect, load_settings
        from pipelines.remote_lint import project_reader

        # Settings first: a missing token fails before any work is done.
        settings = load_settings(os.environ, project=args.project, ca_file=args.ca_file, need_project=False)
        if args.ref and not settings.project:
            raise PipelinesConfigError("--ref needs a project: pass --project ID_OR_PATH or set CI_PROJECT_ID")
        client = connect(settings)
        reader = project_reader(client, settings)
    elif args.project or args.ref or args.ca_file:
        raise PipelinesConfigError("--project, --ref and --ca-file are for --remote")
    check_component_path(args.component_path)
    if args.root is not None and not Path(args.root).is_dir():
        raise PipelinesConfigError(f"--root {args.root}: no such directory")
    results: dict[str, list[Issue]] = {}
    refused: dict[str, str] = {}
    with _phase("offline_lint", "Offline lint") if args.remote else nullcontext():
        for file in args.files:
            root = Path(args.root) if args.root is not None else _repository_root(file)
            includes = IncludeSettings(root=root, component_path=args.component_path, read_project=reader)
            try:
                results[file] = lint_file(file, LintOptions(includes=includes, strict=args.strict))
            except PipelinesConfigError as exc:
                refused[file] = error_line(exc)
                print(refused[file], file=sys.stderr)
    if client is not None and settings is not None:
        from pipelines.remote_lint import component_skipped, lint_remote

        with _phase("remote_lint", "GitLab CI lint"):
            for file in results:
                spec, _body = load_pipeline(file)
                if spec is not None:
                    results[file].append(component_skipped(file))
                    continue
                content = Path(file).read_text(encoding="utf-8").removeprefix("\ufeff")
                results[file] += lint_remote(client, settings, file, content, ref=args.ref)
    errors = sum(i.severity == SEVERITY_ERROR for issues in results.values() for i in issues)
    warnings = sum(i.severity == SEVERITY_WARNING for issues in results.values() for i in issues)
    if args.json:
        report = []
        for file in args.files:
            if file in refused:
                reason = refused[file].removeprefix("Error: ")
                issue = Issue(file, "$", reason, "refused").as_dict(source_key="file")
                report.append({"file": file, "ok": False, "refused": reason, "issues": [issue]})
                continue
            issues = results.get(file, [])
            entry = {
                "file": file,
                "ok": not any(i.severity == SEVERITY_ERROR for i in issues),
                "issues": [i.as_dict(source_key="file") for i in issues],
            }
            report.append(entry)
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        for issues in results.values():
            for issue in issues:
                print(issue)
        clean = sum(not any(i.severity == SEVERITY_ERROR for i in issues) for issues in results.values())
        summary = (
            f"{len(args.files)} file(s) checked: {clean} clean, {len(results) - clean} with errors; "
            f"{errors} error(s), {warnings} warning(s)"
        )
        if refused:
            summary += f", {len(refused)} refused (unreadable or not valid YAML)"
        print(summary)
    # The worst outcome across the files (see EXIT_CODES_HELP): lint errors, then a refused file.
    if errors:
        return EXIT_ISSUES
    return EXIT_BAD_INPUT if refused else EXIT_OK


# --------------------------------------------------------------------------- secrets push


def _secrets_push(args: argparse.Namespace) -> int:
    from pipelines.gitlab_api import connect, load_settings
    from pipelines.secrets import UNCHANGED, check_environment, load_tls, push_secrets

    settings = load_settings(os.environ, project=args.project, ca_file=args.ca_file)
    check_environment(args.environment)
    with _phase("tls_material", "Checking the Docker TLS material"):
        material = load_tls(args.cert_dir, os.environ)  # invalid material stops here: nothing is sent
    client = connect(settings)
    header = "Comparing CI/CD variables (dry run)" if args.dry_run else "Uploading CI/CD variables"
    with _phase("gitlab_variables", header):
        report = push_secrets(client, settings, args.environment, material, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        return EXIT_OK
    print(f"project {report.project}, environment {report.environment}: {material.describe()}")
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for change in report.variables:
        counts[change.action] += 1
        if change.action == UNCHANGED:
            what = "unchanged"
        else:
            what = ("would be " if report.dry_run else "") + change.action
            if change.changed:
                what += f": {', '.join(change.changed)}"
        details = ["file", "protected", "raw", f"scope {report.environment}"]
        details.append("masked" if change.masked else f"not masked: {change.mask_reason}")
        if change.fingerprint:
            details.append(change.fingerprint)
        print(f"{change.key}: {what} ({'; '.join(details)})")
    summary = ", ".join(f"{n} {'would be ' if report.dry_run and a != UNCHANGED else ''}{a}" for a, n in counts.items())
    prefix = "dry run, nothing changed: " if report.dry_run else ""
    print(f"{prefix}{len(report.variables)} variable(s): {summary}")
    return EXIT_OK


# --------------------------------------------------------------------------- deployment record


def _deployment_record(args: argparse.Namespace) -> int:
    from pipelines.deployments import deployment_request, record_deployment
    from pipelines.gitlab_api import connect, load_settings

    request = deployment_request(
        os.environ,
        status=args.status,
        environment=args.environment,
        ref=args.ref,
        sha=args.sha,
        tag=args.tag,
        deployment_id=args.deployment_id,
    )
    settings = load_settings(os.environ, project=args.project, ca_file=args.ca_file)
    client = connect(settings)
    with _phase("deployment_record", "Recording the deployment in GitLab"):
        result = record_deployment(client, settings, request)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        return EXIT_OK
    # The id alone on stdout, for ID=$(...); the description on stderr.
    print(result.id)
    ref = f", ref {result.ref}, sha {result.sha[:8]}" if result.ref and result.sha else ""
    print(
        f"deployment {result.id} (#{result.iid}) {result.action}: environment {result.environment}, "
        f"status {result.status}{ref}",
        file=sys.stderr,
    )
    return EXIT_OK


# --------------------------------------------------------------------------- release-notes


def _release_notes(args: argparse.Namespace) -> int:
    from autocore.files import write_atomic
    from pipelines.changelog import read_changelog, release_notes

    notes = release_notes(read_changelog(args.changelog), args.version)
    if args.output is None:
        sys.stdout.write(notes)
        return EXIT_OK
    write_atomic(args.output, notes)
    print(f"{args.output}: the notes of {args.version} from {args.changelog}, {len(notes.splitlines())} lines")
    return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    return args.handler(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``auto-pipelines``; returns the exit code."""
    return run_command(build_parser(), _dispatch, argv)
