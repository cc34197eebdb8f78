"""``auto-deploy``: the command line. The library raises; only this module prints and exits.

Exit codes: 0 success; 2 bad input or configuration; 3 the deploy did not converge (rolled back,
crashed, timed out); 4 refused (TLS verification failed, authentication refused, unreachable or
inconsistent state); 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from autocore.cli import OneLineArgumentParser, run_command
from autocore.text import display
from autocore.version import add_version_option
from deployer.commands import RESOLVE_IMAGE_CHOICES, docker_cli, docker_host
from deployer.errors import ConfigError
from deployer.state.contract import DEPLOY_TARGETS

if TYPE_CHECKING:
    from deployer.deploy import Context, Report

# Each subcommand imports what it needs when it runs: `--help`, `--version` and `lock status` never load
# the Docker SDK (a fifth of a second), nor the deploy machinery.

EXIT_CODES_HELP = """exit codes:
  0  success
  2  bad input or configuration
  3  the deploy did not converge (rolled back, crashed, timed out)
  4  refused: TLS verification failed, authentication refused, unreachable or inconsistent state
  130 interrupted"""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _seconds(text: str) -> float:
    """Zero or more seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 seconds or more")
    return value


def _workers(text: str) -> int:
    """A number of server workers: ASCII digits, 1 to 1024."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers from 1 to 1024")
    return int(text)


def _lab_workers(text: str) -> int:
    """Workers per colour of the lab: ASCII digits, 0 to 9."""
    if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= 9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers from 0 to 9")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``auto-deploy``."""
    parser = OneLineArgumentParser(
        prog="auto-deploy",
        description="Deploy stacks to the live blue/green Docker Swarm cluster over mutual TLS.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version_option(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)

    def with_env(p: argparse.ArgumentParser) -> None:
        p.add_argument("--env", required=True, help="environment name known to the environment-state service")
        p.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")

    def with_certs(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--cert-dir",
            help="directory with ca.pem, cert.pem, key.pem (default: AUTO_DOCKER_CA/CERT/KEY or AUTO_DOCKER_CERT_PATH)",
        )

    def with_cluster(p: argparse.ArgumentParser) -> None:
        with_env(p)
        p.add_argument("--stack", required=True, help="the Swarm stack")
        with_certs(p)

    def with_lock(p: argparse.ArgumentParser) -> None:
        p.add_argument("--lock-wait", type=_seconds, default=300.0, help="wait this long for the lock (300)")
        p.add_argument("--lock-ttl", type=_positive, default=60.0, help="lock expiry should we crash (60; renewed)")

    p = sub.add_parser("resolve", help="print the live colour and manager address of an environment")
    with_env(p)

    p = sub.add_parser("deploy", help="deploy compose files into a stack on the live cluster and wait")
    with_cluster(p)
    p.add_argument("-c", "--compose-file", dest="compose_files", action="append", required=True, metavar="FILE")
    p.add_argument("--timeout", type=_positive, default=300.0, help="seconds to wait for convergence (300)")
    p.add_argument("--prune", action="store_true", help="remove services of the stack not in these files")
    p.add_argument("--with-registry-auth", action="store_true", help="send registry credentials to the nodes")
    p.add_argument("--resolve-image", choices=RESOLVE_IMAGE_CHOICES, default="always")
    p.add_argument("--no-wait", action="store_true", help="return once Swarm accepted the stack")
    p.add_argument("--rollback-on-failure", action="store_true", help="roll back what this deploy changed")
    p.add_argument("--dry-run", action="store_true", help="print the command and environment; touch nothing")
    p.add_argument("--colour", choices=DEPLOY_TARGETS, default="live", help="the cluster to deploy to (live)")
    with_lock(p)

    p = sub.add_parser("switch", help="bring the idle colour level with the live one and move traffic to it")
    with_env(p)
    with_certs(p)
    p.add_argument("--to", choices=("blue", "green"), help="the colour to make live (default: the idle one)")
    p.add_argument("--dry-run", action="store_true", help="print the plan; touch nothing")
    p.add_argument("--timeout", type=_positive, default=300.0, help="for the replay and health checks (300)")
    p.add_argument("--drain-timeout", type=_positive, default=30.0, help="for the old colour's sessions (30)")
    p.add_argument("--haproxy-socket", help="HAProxy admin socket (default: AUTO_HAPROXY_SOCKET)")
    p.add_argument("--backend", help="HAProxy backend with servers blue and green (AUTO_HAPROXY_BACKEND, app)")
    with_lock(p)

    p = sub.add_parser("lock", help="the environment's deploy/switch lock")
    p.add_argument("lock_command", choices=("status", "release"), help="release frees a lock left by a crash")
    with_env(p)

    p = sub.add_parser("history", help="the audit trail: deploys, rollbacks, switches, locks")
    with_env(p)
    p.add_argument("--limit", type=int, default=50)

    p = sub.add_parser("status", help="the services of a stack on the live cluster")
    with_cluster(p)

    p = sub.add_parser("rollback", help="roll the services of a stack back to their previous spec")
    with_cluster(p)
    p.add_argument("--service", help="only this service (name inside the stack)")
    p.add_argument("--timeout", type=_positive, default=300.0)
    with_lock(p)

    state = sub.add_parser("state", help="the environment-state service").add_subparsers(
        dest="state_command", required=True, parser_class=OneLineArgumentParser
    )
    p = state.add_parser("serve", help="run the reference environment-state service")
    p.add_argument("--db", required=True, help="SQLite database path (created if missing)")
    p.add_argument("--listen", default="127.0.0.1:8787", help="HOST:PORT (127.0.0.1:8787)")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", help="and this key (PEM)")
    p.add_argument("--token-file", help="file holding the bearer token for writes (default: AUTO_STATE_TOKEN)")
    p.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="connections served at once; more wait in the listen backlog (default: 64)",
    )

    lab = sub.add_parser("lab", help="the embedded local lab (needs root)").add_subparsers(
        dest="lab_command", required=True, parser_class=OneLineArgumentParser
    )
    p = lab.add_parser("up", help="start two TLS swarm clusters and the state service (idempotent)")
    p.add_argument(
        "--workers",
        type=_lab_workers,
        default=None,
        help="worker nodes per colour besides its manager, 0 to 9; 0 is the single-node lab, the fastest"
        " (default: the lab's own count, 2 for a new lab)",
    )
    lab.add_parser("down", help="remove daemons, namespaces and data")
    lab.add_parser("status", help="what is running, every node of both colours; exit 3 when a part is down")
    lab.add_parser("env", help='print export lines: eval "$(auto-deploy lab env)"')
    p = lab.add_parser("toolkit-image", help="build the toolkit's image (Dockerfile) on the lab's daemons, offline")
    p.add_argument("--wheel", help="the auto_toolkit wheel to install (default: built from this checkout)")
    p.add_argument("--force", action="store_true", help="build even when the image of this wheel is there")
    return parser


def _print_report(report: Report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        return
    if report.command and report.result == "dry-run":
        print(report.command)
    for service in report.services:
        if "running" in service:
            print(f"{service['service']}: {service['running']}/{service['desired']} running, {service['detail']}")
    print(f"{report.operation} {report.stack} on {report.environment} ({report.colour}): {report.message}")


def _state_client() -> Any:
    from deployer.state.client import StateClient

    return StateClient.from_env(os.environ)


def _material(args: argparse.Namespace) -> Any:
    from deployer.tls import load_material

    return load_material(args.cert_dir, os.environ)


def _context(args: argparse.Namespace | None = None) -> Context:
    from deployer import runner
    from deployer.deploy import Context

    ctx = Context(state=_state_client(), runner=runner.run, environ=dict(os.environ))
    if args is not None and hasattr(args, "lock_wait"):
        ctx.lock_wait, ctx.lock_ttl = args.lock_wait, args.lock_ttl
    return ctx


def _run(args: argparse.Namespace) -> int:
    if args.command == "resolve":
        cluster = _state_client().resolve(args.env)
        data = {
            "environment": args.env,
            "colour": cluster.colour,
            "manager_address": cluster.manager_address,
            "docker_port": cluster.docker_port,
            "docker_host": docker_host(cluster.manager_address, cluster.docker_port),
            "other_managers": list(cluster.other_managers),
        }
        if args.json:
            print(json.dumps(data, indent=2, sort_keys=True))
        else:
            print(f"{args.env}: {cluster.colour} is live, manager {data['docker_host']}")
        return 0
    if args.command in ("deploy", "status", "rollback"):
        return _operation(args)
    if args.command == "switch":
        return _switch(args)
    if args.command == "lock":
        return _lock(args)
    if args.command == "history":
        return _history(args)
    if args.command == "state":
        return _serve(args)
    if args.command == "lab":
        return _lab(args)
    raise AssertionError(args.command)


def _operation(args: argparse.Namespace) -> int:
    from deployer import deploy, runner

    if args.command == "deploy":
        client = docker_cli(os.environ)
        options = deploy.DeployOptions(
            stack=args.stack,
            compose_files=args.compose_files,
            timeout=args.timeout,
            prune=args.prune,
            with_registry_auth=args.with_registry_auth,
            resolve_image=args.resolve_image,
            wait=not args.no_wait,
            rollback_on_failure=args.rollback_on_failure,
            dry_run=args.dry_run,
            docker_cli=client,
            detach_flag=runner.stack_deploy_has_detach(client),
            colour=args.colour,
        )
        material = _material(args)
        report = deploy.deploy(args.env, options, material, _context(args))
        _print_report(report, args.json)
        return 0
    if args.command == "status":
        report = deploy.status(args.env, args.stack, _material(args), _context())
        _print_report(report, args.json)
        return 0 if report.result == "healthy" else 3
    if args.command == "rollback":
        report = deploy.rollback(
            args.env,
            args.stack,
            args.service,
            _material(args),
            _context(args),
            args.timeout,
            docker_cli=docker_cli(os.environ),
        )
        _print_report(report, args.json)
        return 0
    raise AssertionError(args.command)


def _switch(args: argparse.Namespace) -> int:
    from deployer import runner, switch
    from deployer.haproxy import Runtime

    socket_path = args.haproxy_socket or os.environ.get("AUTO_HAPROXY_SOCKET")
    if not socket_path and not args.dry_run:
        raise ConfigError("no HAProxy admin socket: pass --haproxy-socket or set AUTO_HAPROXY_SOCKET")
    client = docker_cli(os.environ)
    options = switch.SwitchOptions(
        to=args.to,
        dry_run=args.dry_run,
        timeout=args.timeout,
        drain_timeout=args.drain_timeout,
        backend=args.backend or os.environ.get("AUTO_HAPROXY_BACKEND", "app"),
        docker_cli=client,
        detach_flag=runner.stack_deploy_has_detach(client),
        state_file=os.environ.get("AUTO_HAPROXY_STATE_FILE") or None,
    )
    material = _material(args)
    report = switch.switch(args.env, options, material, _context(args), Runtime(socket_path or ""))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        return 0
    for step in report.services:
        if "seconds" in step:
            print(f"{step['service']}: {step['seconds']:.2f} s")
        elif step.get("service") != "detail":
            print(step["service"])
    print(f"switch {report.environment}: {report.message}")
    return 0


def _lock(args: argparse.Namespace) -> int:
    state = _state_client()
    if args.lock_command == "status":
        held = state.lock_status(args.env)
        if args.json:
            data = None if held is None else dataclasses.asdict(held)
            print(json.dumps({"environment": args.env, "lock": data}, indent=2, sort_keys=True))
        elif held is None:
            print(f"{args.env}: not locked")
        else:
            print(f"{args.env}: locked by {held.owner} for {held.purpose!r}, expires in {held.expires_in:.0f} s")
        return 0
    from deployer.lock import actor

    released = state.release_lock(args.env, force=True, actor=actor(os.environ))
    print(f"{args.env}: lock released" if released else f"{args.env}: was not locked")
    return 0


def _history(args: argparse.Namespace) -> int:
    events = _state_client().history(args.env, limit=args.limit)
    if args.json:
        print(json.dumps({"environment": args.env, "events": events}, indent=2, sort_keys=True))
        return 0
    for event in events:
        detail = event.get("detail") or {}
        plain = {k: v for k, v in detail.items() if k not in ("result", "revision", "job_url", "message")}
        what = detail.get("message") or ", ".join(
            f"{k}={v}" for k, v in sorted(plain.items()) if not isinstance(v, dict | list)
        )
        # Messages, reasons and actors are other people's text: each shown on one line, escapes visible.
        job = f" {display(detail['job_url'])}" if detail.get("job_url") else ""
        result = display(detail.get("result", ""))
        actor = display(event.get("actor") or "-")
        print(f"{display(event['at'])}  {display(event['kind']):<11} {result:<12} {actor}{job}  {display(what)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from deployer.state import server

    token = os.environ.get("AUTO_STATE_TOKEN", "")
    if args.token_file:
        try:
            with open(args.token_file, "rb") as handle:
                raw = handle.read(64 * 1024 + 1)  # a token is a line; a bigger file is not a token file
        except OSError as exc:
            raise ConfigError(f"cannot read --token-file {args.token_file}: {exc.strerror or exc}") from None
        if len(raw) > 64 * 1024:
            raise ConfigError(f"--token-file {args.token_file} is over 64 KiB: it should hold the token only")
        try:
            token = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            # Binary content: a one-line error (the server then says what a token may hold), not a traceback.
            raise ConfigError(
                f"--token-file {args.token_file} is not a text file: the token must be printable ASCII without spaces"
            ) from None
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
    workers = {} if args.workers is None else {"max_workers": args.workers}
    server.run(args.db, args.listen, token, certfile=args.tls_cert, keyfile=args.tls_key, **workers)
    return 0


def _lab(args: argparse.Namespace) -> int:
    from deployer.lab import lab

    if args.lab_command == "up":
        info = lab.up(workers=args.workers)
        print(json.dumps(info, indent=2, sort_keys=True, default=str))
        print('lab is up: eval "$(auto-deploy lab env)" to use it', file=sys.stderr)
    elif args.lab_command == "down":
        lab.down()
        print("lab is down", file=sys.stderr)
    elif args.lab_command == "status":
        info = lab.status()
        print(json.dumps(info, indent=2, sort_keys=True, default=str))
        return 0 if info.get("up") else 3  # every colour's nodes Ready, the state service, HAProxy, the registry
    elif args.lab_command == "env":
        print(lab.env_lines(), end="")
    elif args.lab_command == "toolkit-image":
        from deployer.lab import toolkit_image

        print(json.dumps(toolkit_image.build_toolkit_image(args.wheel, force=args.force), indent=2, default=str))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``auto-deploy``; returns the exit code."""
    return run_command(build_parser(), _run, argv, interrupted="interrupted; temporary TLS material was removed")
