"""The demo's commands as data, and its service's second release as a list of edits: pure functions only.

The demo runs the toolkit's real commands (``cookiecutter``, the service's own ``tox``, ``auto-deploy``,
``auto-docs``) as separate processes; their argv and environments are built here and compared exactly by
tests/unit/test_demo_commands.py. :mod:`deployer.lab.demo` is the one place that runs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from deployer.lab.front import APP_PORT
from deployer.lab.layout import ENVIRONMENT

SERVICE_NAME = "Demo Orders"  # the template's answer; the slug, the stack and the package follow from it
SLUG = "demo-orders"
PACKAGE = "demo_orders"
STACK = SLUG  # as the service's own pipeline names its stack
OLD_STACKS = (STACK, "demo")  # the demo's stack and the lab's older sample stack (and the tests' front app)
DEPLOY_TIMEOUT = 180
# What the service's v2 changes, file by file: its API version and release number, in its code, its stack's docs
# label, its descriptor and its guides. Each old text must be there (the template changed otherwise).
RELEASE_2: tuple[tuple[str, str, str], ...] = (
    (f"{PACKAGE}/__init__.py", 'API_VERSION = "v1"', 'API_VERSION = "v2"'),
    (f"{PACKAGE}/__init__.py", '__version__ = "0.1.0"', '__version__ = "0.2.0"'),
    ("pyproject.toml", 'version = "0.1.0"', 'version = "0.2.0"'),
    ("docker-stack.yml", 'auto.docs.version: "v1"', 'auto.docs.version: "v2"'),
    ("auto-service.yml", 'version: "v1"', 'version: "v2"'),
    ("docs/index.md", f"# {SERVICE_NAME} (v1)", f"# {SERVICE_NAME} (v2)"),
    ("docs/conf.py", 'release = "v1"', 'release = "v2"'),
    ("tests/functional/test_service.py", 'spec["info"]["version"] == "v1"', 'spec["info"]["version"] == "v2"'),
)
LAB_OVERRIDE = "docker-stack.lab.yml"  # written next to the service's own stack file


def lab_override(compose_version: str, replicas: int) -> str:
    """A compose file merged over the service's own for the lab (its pipeline's lab job would set PUBLISH_MODE and
    REPLICAS; a file is recorded with the deploy, so a later switch replays the same topology):

    * its port in host mode (the lab has no IPVS for the routing mesh), ``replicas`` (one per node of a colour),
      and stop-first updates (a node's port is held by one task at a time);
    * a health check every 2 s and a 2 s monitor window instead of production's 10 s and 30 s, so that a
      deploy converges in seconds, and 2 s (not 10) for a task to stop: uvicorn waits for HAProxy's keep-alive
      connections to close, so the next demo's removal would wait for the whole grace period.

    ``docker stack deploy`` refuses files of different compose versions: ``compose_version`` is the service's."""
    return (
        f'version: "{compose_version}"\n'
        "services:\n"
        f"  {SLUG}:\n"
        f"    ports:\n      - {{target: {APP_PORT}, published: {APP_PORT}, protocol: tcp, mode: host}}\n"
        "    healthcheck: {interval: 2s, timeout: 2s, retries: 3, start_period: 10s}\n"
        "    stop_grace_period: 2s\n"
        "    deploy:\n"
        f"      replicas: {replicas}\n"
        "      update_config: {order: stop-first, monitor: 2s}\n"
    )


def bake_argv(python: str, template: Path, output_dir: Path, docs_url: str) -> list[str]:
    """cookiecutter-auto-service, no questions asked: the demo's name, HAProxy's app port, its pages' URL."""
    return [
        python, "-m", "cookiecutter", "--no-input", "--output-dir", str(output_dir), str(template),
        f"service_name={SERVICE_NAME}", f"port={APP_PORT}", f"docs_url={docs_url}",
    ]  # fmt: skip


def tox_argv(tox: str, workdir: Path) -> list[str]:
    """The service's own ``tox -e test``; its virtualenv kept in ``workdir`` (outside the re-baked project), so a
    second run reuses it."""
    return [tox, "-e", "test", "--workdir", str(workdir)]


def spec_write_argv(python: str) -> list[str]:
    """The service's own generator of ``openapi.json`` (its ``make spec-write``), with the tox env's Python."""
    return [python, "-m", f"{PACKAGE}.openapi", "--write", "openapi.json"]


def deploy_argv(python: str, colour: str, *, registry: bool) -> list[str]:
    """``auto-deploy deploy`` as the service's pipeline job runs it, to ``colour`` (live or idle), with a summary
    on stdout; ``--with-registry-auth`` when the lab's workers pull from its registry."""
    argv = [
        python, "-m", "deployer", "deploy", "--env", ENVIRONMENT, "--stack", STACK, "--compose-file",
        "docker-stack.yml", "--compose-file", LAB_OVERRIDE, "--colour", colour, "--resolve-image", "never",
        "--rollback-on-failure", "--timeout", str(DEPLOY_TIMEOUT), "--json",
    ]  # fmt: skip
    return [*argv, "--with-registry-auth"] if registry else argv


def switch_argv(python: str, to: str | None = None) -> list[str]:
    """``auto-deploy switch`` with a JSON report; ``to`` the live colour only makes HAProxy agree."""
    if to is None:
        return [python, "-m", "deployer", "switch", "--env", ENVIRONMENT, "--json"]
    return [python, "-m", "deployer", "switch", "--env", ENVIRONMENT, "--to", to, "--lock-wait", "60"]


def docs_argv(python: str, manifest: Path, out: Path, cache: Path, ca_file: str, report: Path) -> list[str]:
    """``auto-docs build --from-env lab``: the live colour's services, with the demo manifest's title and guide."""
    return [
        python, "-m", "docgen", "build", "--manifest", str(manifest), "--from-env", ENVIRONMENT, "--out", str(out),
        "--cache", str(cache), "--ca-file", ca_file, "--json-report", str(report),
    ]  # fmt: skip


def history_command() -> str:
    """What the summary tells the user to run."""
    return f"auto-deploy history --env {ENVIRONMENT}"


def stack_env(image: str) -> dict[str, str]:
    """The variable the service's ``docker-stack.yml`` reads for its image, as its pipeline's deploy job sets it."""
    return {"IMAGE": image}


def image_tag(version: int) -> str:
    """The service's image for release ``version`` (1 or 2), as built on the lab's daemons."""
    return f"auto-lab/{SLUG}:{version}"


def child_env(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    """``base`` without what would leak this interpreter's virtualenv or a tox run into a child, plus ``extra``."""
    env = {k: v for k, v in base.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "TOX_", "PYTEST_"))}
    env.update(extra)
    return env


def apply_edits(files: Mapping[str, str], edits: Sequence[tuple[str, str, str]]) -> dict[str, str]:
    """``files`` (path -> text) with each edit applied once; ValueError naming the first that does not apply."""
    result = dict(files)
    for path, old, new in edits:
        text = result.get(path)
        if text is None or old not in text:
            raise ValueError(f"{path}: {old!r} not found (has the template changed?)")
        result[path] = text.replace(old, new, 1)
    return result
