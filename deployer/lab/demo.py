"""``make demo``: a new service from the template to live on the lab, documented, switched under load.

Eight steps, each shown with its time (:mod:`deployer.lab.demo_steps`), each running the toolkit's real commands
as a user would (their argv: :mod:`deployer.lab.demo_commands`):

1. the last demo's stacks removed from both colours, HAProxy made to agree with the state service; the service
   ``demo-orders`` baked from ``cookiecutter-auto-service`` (``--no-input``) into the lab directory's ``demo/``;
2. its own tests, ``tox -e test`` (its virtualenv kept in ``demo/tox``: a second run reuses it);
3. its image built on the lab's live colour, on the lab's offline base image (:mod:`deployer.lab.service_image`;
   with workers, pushed to the lab's registry), and its pages (``openapi.json``) published;
4. ``auto-deploy deploy`` to the live colour, then its answer through HAProxy;
5. v2 (API version v2, release 0.2.0: its code, stack label, descriptor and guides), tested, built and deployed to
   the idle colour;
6. ``auto-docs build --from-env lab`` with the toolkit's guide, served on 127.0.0.1;
7. ``auto-deploy switch`` while a load runs through HAProxy, with the counts;
8. v2's pages published and the portal built again from the environment, which shows v2 live.

The service's stack publishes HAProxy's app port (18080, host mode) as the lab's sample stack does; that stack
(``demo``, also the tests' front app) is removed first, since only one stack can hold the port.
Ctrl-C or SIGTERM at any step: children are interrupted and waited for (``auto-deploy`` releases its lock), the
portal's server stopped; one ``Error: step N (…): interrupted`` line, exit 130. The next run starts clean.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from autocore import runner
from autocore.text import display
from deployer import engine
from deployer.errors import ConfigError, DeployerError, NotConvergedError
from deployer.lab import demo_commands as cmd
from deployer.lab import demo_portal, lab, service_image
from deployer.lab.demo_steps import Step, StepResult, run_steps
from deployer.lab.front import APP_PORT
from deployer.lab.layout import CLUSTERS, DOCKER_PORT, ENVIRONMENT, LabPaths, lab_dir
from deployer.lab.load import Load
from deployer.state.client import StateClient
from deployer.state.contract import COLOURS, other_colour

STACK = "demo"  # the lab's sample stack (README, benchmarks/switch_under_load.py)
STACK_FILE = files("deployer.lab") / "demo-stack.yml"  # package data: found in a wheel as in the source tree
REPO = Path(__file__).resolve().parents[2]  # make demo runs from the source tree: the template and the guide
TEMPLATE = REPO / "cookiecutter-auto-service"
COMMAND_TIMEOUT = 600.0
ANSWER_TIMEOUT = 60.0  # for the service to answer through HAProxy after its deploy


def demo_env() -> dict[str, str]:
    """The environment of the demo's commands: the lab's variables; with workers, the registry's login too."""
    values = lab.env_values()
    env = {**os.environ, **values}
    if "AUTO_LAB_DOCKER_CONFIG" in values:  # the login --with-registry-auth hands the nodes
        env["DOCKER_CONFIG"] = values["AUTO_LAB_DOCKER_CONFIG"]
    return env


def stack_text(text: str, version: str, env: Mapping[str, str], nodes: int | None = None) -> str:
    """The lab's sample stack for ``auto-lab/web:VERSION``: from the lab registry when the lab has one, one replica
    per node of a colour (``nodes``; the lab's own count when None)."""
    image = f"auto-lab/web:{version}"
    if registry := env.get("AUTO_LAB_REGISTRY"):
        image = f"{registry}/{image}"
    if nodes is None:
        nodes = 1 + (LabPaths(lab_dir(env)).recorded_workers() or 0)
    return text.replace("auto-lab/web:1", image).replace("replicas: 1\n", f"replicas: {nodes}\n", 1)


def registry_args(env: Mapping[str, str]) -> list[str]:
    """``--with-registry-auth`` when the lab has a registry (its workers pull from it)."""
    return ["--with-registry-auth"] if env.get("AUTO_LAB_REGISTRY") else []


def api_version(body: str) -> str:
    """The version an ``openapi.json`` answer says (the load's label for an answer); ValueError otherwise."""
    try:
        version = json.loads(body)["info"]["version"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an OpenAPI document: {display(body, 80)}") from exc
    return str(version)


def last_error(text: str) -> str:
    """The line of a command's output that says what went wrong: its ``Error:`` line, else its last line."""
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    line = (errors or lines or ["(no output)"])[-1]
    return line.removeprefix("Error: ")


@dataclass
class Demo:
    """One run of the demo: where it works, what it learned on the way."""

    env: dict[str, str]
    work: Path
    python: str = sys.executable
    live: str = ""
    images: dict[int, str] = field(default_factory=dict)
    pages: demo_portal.PagesServer | None = None
    portal_url: str = ""
    switch_note: str = ""
    _count: int = 0

    # --- places and settings ---

    @property
    def project(self) -> Path:
        return self.work / cmd.SLUG

    @property
    def idle(self) -> str:
        return other_colour(self.live)

    @property
    def front_url(self) -> str:
        return self.env["AUTO_LAB_FRONT_URL"]

    @property
    def registry(self) -> bool:
        return bool(self.env.get("AUTO_LAB_REGISTRY"))

    @property
    def nodes(self) -> int:
        return 1 + (LabPaths(lab_dir(self.env)).recorded_workers() or 0)

    @property
    def tox_python(self) -> str:
        return str(self.work / "tox" / "test" / "bin" / "python")

    # --- the one runner of the demo's commands ---

    def run(self, argv: Sequence[str], what: str, *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run one command, its output kept in ``demo/logs/`` and ``demo/demo.log``; NotConvergedError naming its
        ``Error:`` line when it fails."""
        self._count += 1
        logs = self.work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        base = logs / f"{self._count:02d}-{re.sub(r'[^a-z0-9]+', '-', what.lower()).strip('-')}"
        try:
            proc = runner.execute_interruptible(
                argv, stdout=base.with_suffix(".out"), stderr=base.with_suffix(".err"),
                env=cmd.child_env(env or self.env), cwd=cwd, timeout=timeout,
            )  # fmt: skip
        except runner.ProgramNotFoundError as exc:
            raise ConfigError(f"{what}: {argv[0]} not found (make venv installs the toolkit and its tools)") from exc
        finally:
            self._log(argv, base)
        if proc.returncode != 0:
            raise NotConvergedError(
                f"{what} exited {proc.returncode}: {last_error(proc.stderr or proc.stdout)} (see {base}.err)"
            )
        return proc

    def _log(self, argv: Sequence[str], base: Path) -> None:
        with open(self.work / "demo.log", "a", encoding="utf-8") as log:
            log.write(f"$ {shlex.join(argv)}\n")
            for suffix in (".out", ".err"):
                path = base.with_suffix(suffix)
                if path.exists():
                    log.write(path.read_text(errors="replace"))

    # --- the steps ---

    def steps(self) -> list[Step]:
        return [
            Step(f"bake {cmd.SLUG} from cookiecutter-auto-service (the last demo removed)", self.bake),
            Step("run its own tests: tox -e test", self.test),
            Step("build its image v1 on the lab, publish its pages", self.build_v1),
            Step("deploy v1 to the live colour with auto-deploy", self.deploy_v1),
            Step("release v2 (API v2): test, build, deploy to the idle colour", self.release_v2),
            Step("build the docs portal from the live environment, serve it", self.portal_v1),
            Step("switch to the idle colour under load through HAProxy", self.switch),
            Step("publish v2's pages, rebuild the portal: v2 is live", self.portal_v2),
        ]

    def bake(self) -> str:
        if not (TEMPLATE / "cookiecutter.json").is_file():
            raise ConfigError(f"no cookiecutter-auto-service in {REPO}: make demo runs from the toolkit's source tree")
        demo_portal.stop_server(self.work / "portal.pid")
        for stale in (self.project, self.work / "portal", self.work / "pages", self.work / "logs"):
            shutil.rmtree(stale, ignore_errors=True)
        (self.work / "demo.log").unlink(missing_ok=True)
        started = time.monotonic()
        removed = remove_demo_stacks(self.env)
        removing = time.monotonic() - started
        self.live = StateClient.from_env(self.env).get_environment(ENVIRONMENT).live_colour
        self.run(cmd.switch_argv(self.python, to=self.live), "auto-deploy switch --to the live colour")
        (self.work / "portal.yml").write_text(demo_portal.portal_manifest(REPO))
        config = self.work / "cookiecutter.yml"  # replay files and clones stay in the demo directory
        config.write_text(f"cookiecutters_dir: {self.work / 'cookiecutters'}\nreplay_dir: {self.work / 'replay'}\n")
        assert self.pages is not None
        docs_url = self.pages.url(cmd.SLUG)
        env = {**self.env, "COOKIECUTTER_CONFIG": str(config)}
        self.run(cmd.bake_argv(self.python, TEMPLATE, self.work, docs_url), "cookiecutter", env=env)
        version = yaml.safe_load((self.project / "docker-stack.yml").read_text())["version"]
        (self.project / cmd.LAB_OVERRIDE).write_text(cmd.lab_override(str(version), self.nodes))
        gone = f"; removed in {removing:.1f} s: {', '.join(removed)}" if removed else ""
        return f"{self.project} (port {APP_PORT}, docs_url {docs_url}); {self.live} is live{gone}"

    def _tox(self) -> str:
        tox = str(Path(self.python).parent / "tox")
        proc = self.run(cmd.tox_argv(tox, self.work / "tox"), "tox -e test", cwd=self.project)
        found = re.findall(r"(\d+) passed", proc.stdout)
        return f"{found[-1]} tests passed" if found else "tox -e test passed"

    def test(self) -> str:
        return self._tox()

    def _build(self, version: int, *colours: str) -> str:
        tag = cmd.image_tag(version)
        try:
            result = service_image.build_service_image(self.project, tag, colours=colours, publish=self.registry)
        except DeployerError as exc:
            raise type(exc)(f"building {tag}: {exc}") from exc
        self.images[version] = result.get("registry_ref", tag)
        return f"{self.images[version]} on {' and '.join(colours)} in {result['seconds']:.0f} s"

    def build_v1(self) -> str:
        built = self._build(1, self.live)
        demo_portal.publish_pages(self.project, self.work / "pages", cmd.SLUG)
        return built

    def _deploy(self, version: int, colour: str) -> str:
        env = {**self.env, **cmd.stack_env(self.images[version])}
        proc = self.run(cmd.deploy_argv(self.python, colour, registry=self.registry), "auto-deploy deploy",
                        cwd=self.project, env=env)  # fmt: skip
        summary = json.loads(proc.stdout)
        running = ", ".join(f"{s['service']} {s['running']}/{s['desired']}" for s in summary.get("services", []))
        return f"{summary.get('colour', colour)}: {summary.get('result')}, {running}"

    def deploy_v1(self) -> str:
        deployed = self._deploy(1, "live")
        url = f"{self.front_url}/openapi.json"
        answered = wait_for_version(url, "v1", ANSWER_TIMEOUT)
        return f"{deployed}; {url} answers {answered}"

    def release_v2(self) -> str:
        sources = {path: (self.project / path).read_text() for path, _, _ in cmd.RELEASE_2}
        try:
            edited = cmd.apply_edits(sources, cmd.RELEASE_2)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        for path, text in edited.items():
            (self.project / path).write_text(text)
        self.run(cmd.spec_write_argv(self.tox_python), "the service's openapi.json generator", cwd=self.project)
        tests = self._tox()
        # On both colours: a switch back to the old colour replays v2 there (with --resolve-image never, from the
        # node's own images when the lab has no worker).
        built = self._build(2, self.idle, self.live)
        deployed = self._deploy(2, "idle")
        return f"{tests}; {built}; {deployed}"

    def _portal(self) -> dict[str, str]:
        argv = cmd.docs_argv(
            self.python, self.work / "portal.yml", self.work / "portal", self.work / "docs-cache",
            self.env["AUTO_STATE_CA"], self.work / "portal-report.json",
        )  # fmt: skip
        # Only the demo's own pages are fetched: the lab may record services whose docs are elsewhere.
        env = {**self.env, "AUTO_DOCS_FETCH_HOSTS": demo_portal.HOST}
        self.run(argv, "auto-docs build --from-env lab", env=env)
        html = (self.work / "portal" / "index.html").read_text(errors="replace")
        row = demo_portal.service_row(html, cmd.SLUG)
        if row is None:
            raise NotConvergedError(f"the portal's catalogue does not list {cmd.SLUG} (see {self.work / 'portal'})")
        return row

    def portal_v1(self) -> str:
        row = self._portal()
        check_row(row, "v1", self.live)
        port = demo_portal.portal_port(self.env)
        log = self.work / "logs" / "portal-server.log"
        try:
            demo_portal.start_server(self.python, self.work / "portal", port, self.work / "portal.pid", log)
        except OSError as exc:
            raise ConfigError(f"{exc} (set {demo_portal.PORTAL_PORT_ENV} to a free port)") from None
        self.portal_url = f"http://{demo_portal.HOST}:{port}/"
        return f"{self.portal_url}: {describe(row)}"

    def switch(self) -> str:
        url = f"{self.front_url}/openapi.json"
        with Load(url, connections=4, max_seconds=180, label=api_version) as load:
            time.sleep(1.0)
            started = time.monotonic()
            proc = self.run(cmd.switch_argv(self.python), "auto-deploy switch")
            seconds = time.monotonic() - started
            time.sleep(1.0)
        result = load.result
        if result.failed:
            raise NotConvergedError(f"{result.failed} of {result.sent} requests failed: {result.errors[0]}")
        report = json.loads(proc.stdout)
        timings = {s["service"]: s["seconds"] for s in report.get("services", []) if "seconds" in s}
        moved = timings.get("traffic_seconds")
        self.switch_note = f"{result.line()}; the switch took {seconds:.1f} s" + (
            f", traffic moved in {moved:.2f} s" if moved is not None else ""
        )
        self.live = self.idle
        return f"{self.live} is live; {self.switch_note}"

    def portal_v2(self) -> str:
        demo_portal.publish_pages(self.project, self.work / "pages", cmd.SLUG)
        row = self._portal()
        check_row(row, "v2", self.live)
        return f"{self.portal_url}: {describe(row)}"

    # --- the end ---

    def summary(self, results: list[StepResult]) -> str:
        total = sum(r.seconds for r in results)
        return "\n".join([
            f"Done in {total:.0f} s. What each step showed:",
            f"  - a new service, {cmd.SLUG}, from the template with no question asked, its own tests passing;",
            "  - its own Dockerfile built on the lab's offline base image, deployed by the real `auto-deploy deploy`",
            "    to the live colour (v1) and the idle one (v2), each converged and recorded in the state service;",
            "  - the docs portal built by `auto-docs build --from-env lab` from what the environment says is live,",
            "    with the toolkit's guide;",
            f"  - a blue/green switch through HAProxy under load with no failed request: {self.switch_note};",
            "  - the portal rebuilt from the environment: v2 is now what it lists as live.",
            "Where to look:",
            f"  the portal:                 {self.portal_url}  (served until the next demo or make lab-down)",
            f"  the service through HAProxy: {self.front_url}/openapi.json, {self.front_url}/docs",
            f"  the history:                {cmd.history_command()}  (after: eval \"$(auto-deploy lab env)\")",
            f"  the service's project:      {self.project}  (log of every command: {self.work / 'demo.log'})",
            "Remove it all: make lab-down (the lab, the demo's stacks, its directory and the portal's server).",
        ])  # fmt: skip


def describe(row: Mapping[str, str]) -> str:
    """A catalogue row in a few words: ``demo-orders v2, published, live on green``."""
    values = list(row.values())
    return ", ".join(v for v in values[:4] if v) if values else ""


def check_row(row: Mapping[str, str], version: str, colour: str) -> None:
    """The portal lists the service at ``version``, live on ``colour``; NotConvergedError otherwise."""
    cells = list(row.values())
    if version not in cells or not any(colour in cell.lower() for cell in cells):
        raise NotConvergedError(f"the portal lists {describe(row)!r}, not {cmd.SLUG} {version} live on {colour}")


def wait_for_version(url: str, version: str, timeout: float) -> str:
    """Wait until ``url`` (through HAProxy) answers an OpenAPI document of ``version``; its version."""
    deadline = time.monotonic() + timeout
    seen = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                seen = api_version(response.read().decode(errors="replace"))
            if seen == version:
                return seen
        except (OSError, ValueError) as exc:
            seen = display(exc, 120)
        time.sleep(0.3)
    raise NotConvergedError(f"{url} did not answer {version} within {timeout:.0f} s (last: {seen})")


def remove_demo_stacks(env: Mapping[str, str], timeout: float = 60) -> list[str]:
    """Remove, on both colours, the services of the demo's stacks and anything else publishing HAProxy's app port;
    wait until their containers are gone (the port free). Returns ``colour: service`` of what was removed."""
    apis = {
        colour: engine.connect(CLUSTERS[colour].address, DOCKER_PORT, env["AUTO_DOCKER_CERT_PATH"])
        for colour in COLOURS
    }
    try:
        gone: dict[str, list[str]] = {colour: [] for colour in COLOURS}
        for colour, api in apis.items():  # both colours first, then one wait: their containers stop side by side
            for service in api.services():
                stack = service["Spec"].get("Labels", {}).get("com.docker.stack.namespace")
                ports = (service.get("Endpoint") or {}).get("Spec", {}).get("Ports") or []
                if stack in cmd.OLD_STACKS or any(p.get("PublishedPort") == APP_PORT for p in ports):
                    api.remove_service(service["ID"])
                    gone[colour].append(service["Spec"]["Name"])
        deadline = time.monotonic() + timeout
        for colour, api in apis.items():
            while gone[colour] and time.monotonic() < deadline:
                if not [c for c in api.containers(all=True) if _service_of(c) in gone[colour]]:
                    break
                time.sleep(0.3)
    finally:
        for api in apis.values():
            api.close()
    return [f"{colour}: {name}" for colour in COLOURS for name in gone[colour]]


def _service_of(container: Mapping[str, Any]) -> str | None:
    return (container.get("Labels") or {}).get("com.docker.swarm.service.name")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds as Ctrl-C does: children interrupted, the portal's server stopped


def main() -> int:
    """Run the demo; exit non-zero when a step fails (one ``Error:`` line) or was interrupted (130)."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C interrupts the demo even when it was started with SIGINT ignored (from a background job of a script):
    # and its children, which inherit a handled signal as the default one, get Python's handler too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        env = demo_env()
        work = LabPaths(lab_dir(env)).root / "demo"
        work.mkdir(parents=True, exist_ok=True)
        port = demo_portal.pages_port(env)
    except (DeployerError, OSError, ValueError) as exc:
        print(f"Error: the demo cannot start: {display(exc)}", file=sys.stderr)
        return 2
    try:
        pages = demo_portal.PagesServer(work / "pages", port, *state_cert(env))
    except OSError as exc:
        where = f"127.0.0.1:{port}, {demo_portal.PAGES_PORT_ENV}"
        print(f"Error: the demo cannot serve its service's pages ({where}): {display(exc)}", file=sys.stderr)
        return 2
    demo = Demo(env, work)
    print(f"make demo: a new service from the template to live on the lab ({work})", flush=True)
    code, results = 130, []
    try:
        with pages:
            demo.pages = pages
            code, results = run_steps(demo.steps())
    except KeyboardInterrupt:  # between steps, or while the pages server starts or stops
        print("Error: interrupted", file=sys.stderr)
    finally:
        if code != 0:
            demo_portal.stop_server(work / "portal.pid")  # an unfinished demo leaves nothing serving
        signal.signal(signal.SIGTERM, previous)
    if code == 0:
        print(demo.summary(results), flush=True)
    return code


def state_cert(env: Mapping[str, str]) -> tuple[Path, Path]:
    """The lab state service's certificate and key (lab CA, SAN 127.0.0.1): the pages server's too."""
    directory = LabPaths(lab_dir(env)).certs / "state"
    return directory / "cert.pem", directory / "key.pem"


if __name__ == "__main__":
    sys.exit(main())
