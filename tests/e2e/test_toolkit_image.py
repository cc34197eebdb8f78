"""The toolkit's own image, built offline on the lab from the repository's Dockerfile, and the deploy component's
script run inside it against the lab's live cluster, as a GitLab job would run it.

The image is built by ``deployer.lab.toolkit_image`` from a wheel of this work tree at the installed toolkit's
version, on both lab daemons. The job runs with ``docker run`` on the live colour's daemon (blue, as ``lab up``
seeds it):

* network: ``--network host`` puts the container in that colour's network namespace, where the manager's TLS port
  (``10.213.1.2:2376``, the address the state service gives) is local. The state service listens on the host's
  loopback only (``https://127.0.0.1:8787``; its certificate is for 127.0.0.1 and localhost), so :class:`Relay`
  listens on ``127.0.0.1:8787`` inside the colour's namespace and carries the bytes to the host's
  ``127.0.0.1:8787``: the job uses the very ``AUTO_STATE_URL`` ``lab env`` gives, and TLS stays end to end (the
  relay sees ciphertext only);
* variables: what GitLab sets for a job (``CI``, ``GITLAB_CI``, ``CI_PROJECT_DIR``, ``CI_JOB_URL``,
  ``GITLAB_USER_LOGIN``, ``CI_COMMIT_SHORT_SHA`` …), the job's own ``variables:`` expanded with them, and the
  project's CI/CD variables: ``AUTO_STATE_URL``, the masked ``AUTO_STATE_TOKEN`` (passed as ``-e NAME`` so its
  value never appears in a command line), and the file-type variables ``AUTO_DOCKER_CA``, ``AUTO_DOCKER_CERT``,
  ``AUTO_DOCKER_KEY`` and ``AUTO_STATE_CA``: as GitLab does it, each variable's value is the path of a file holding
  the PEM, ``$CI_PROJECT_DIR.tmp/NAME``; that folder is mounted read-only, owned by the image's user;
* the script: the ``script:`` of ``templates/deploy-staging.yml`` after the pipelines library filled in its inputs
  and ``$[[ component.version ]]`` as GitLab would, run by ``sh`` (``set -e``) in the project folder (mounted at
  ``CI_PROJECT_DIR``), then its ``after_script:``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autocore.version import toolkit_version
from deployer.errors import ConfigError
from deployer.lab import service_image, toolkit_image
from deployer.lab.layout import CLUSTERS
from tests.support import ROOT, Lab, unavailable

COMPONENT = ROOT / "templates" / "deploy-staging.yml"
RUN_ON = "blue"  # where the image checks run (both colours have the image)
PROJECT_DIR = "/builds/auto/{service}"  # where a GitLab runner's docker executor clones the project
JOB_URL = "https://gitlab.example.test/auto/{service}/-/jobs/4242"
USER_LOGIN = "ci-tester"
STACK_FILE = """services:
  web:
    image: ${IMAGE}
    deploy:
      replicas: 1
      update_config: {order: stop-first, failure_action: rollback, monitor: 1s}
      restart_policy: {condition: any, delay: 1s}
"""
FILE_VARIABLES = {"AUTO_DOCKER_CA": "ca.pem", "AUTO_DOCKER_CERT": "cert.pem", "AUTO_DOCKER_KEY": "key.pem"}
CLONE_NEWNET = 0x40000000


# --- pure parts: no lab needed -------------------------------------------------------------------------------


def test_argv_builders_and_names() -> None:
    assert toolkit_image.wheel_build_argv("/py", "/src", "/out") == ["/py", "-m", "build", "--wheel", "--outdir",
                                                                     "/out", "/src"]  # fmt: skip
    argv = toolkit_image.toolkit_build_argv(
        "docker", "/ctx", "auto-lab/toolkit:1.2.0", base_image="b:1", cli_image="c:2", labels={"k": "v", "a": "b"}
    )
    assert argv == [
        "docker", "build", "--force-rm", "-f", "/ctx/Dockerfile", "--build-arg", "BASE_IMAGE=b:1",
        "--build-arg", "DOCKER_CLI_IMAGE=c:2", "--label", "a=b", "--label", "k=v", "-t", "auto-lab/toolkit:1.2.0",
        "/ctx",
    ]  # fmt: skip
    assert toolkit_image.image_tag("1.2.0") == "1.2.0"
    assert toolkit_image.image_tag("0.1.dev86+g198a6cb15.d20261201") == "0.1.dev86-g198a6cb15.d20261201"
    assert toolkit_image.parse_client_version("Docker version 28.2.2, build e6534b4\n") == "28.2.2"
    with pytest.raises(ConfigError):
        toolkit_image.parse_client_version("podman 5")
    assert toolkit_image.wheel_version("dist/auto_toolkit-1.2.0-py3-none-any.whl") == "1.2.0"
    assert toolkit_image.client_version_argv("/usr/local/bin/docker") == ["/usr/local/bin/docker", "--version"]


def test_wheel_requirements_digest_and_key(tmp_path: Path) -> None:
    import zipfile

    def make(name: str, stamp: tuple[int, ...]) -> Path:
        wheel = tmp_path / name / "auto_toolkit-1.2.0-py3-none-any.whl"
        wheel.parent.mkdir()
        metadata = (
            "Metadata-Version: 2.4\nName: auto-toolkit\nVersion: 1.2.0\nRequires-Dist: docker>=7.1\n"
            'Requires-Dist: PyYAML>=6.0\nRequires-Dist: pytest>=8; extra == "test"\n'
            'Requires-Dist: tomli; python_version < "3.11"\n\nREADME\n'
        )
        with zipfile.ZipFile(wheel, "w") as archive:
            for member, data in (("deployer/__init__.py", ""), ("auto_toolkit-1.2.0.dist-info/METADATA", metadata)):
                archive.writestr(zipfile.ZipInfo(member, date_time=stamp), data)
        return wheel

    one, two = make("a", (2020, 1, 1, 0, 0, 0)), make("b", (2026, 1, 1, 0, 0, 0))
    assert toolkit_image.wheel_requirements(one) == ["PyYAML>=6.0", "docker>=7.1", 'tomli; python_version < "3.11"']
    assert one.read_bytes() != two.read_bytes()
    assert toolkit_image.wheel_digest(one) == toolkit_image.wheel_digest(two)  # the zip's times do not count
    key = toolkit_image.toolkit_key({"wheel": "w", "base": "b"})
    assert key == toolkit_image.toolkit_key({"base": "b", "wheel": "w"}) != toolkit_image.toolkit_key({"wheel": "x"})


def test_cli_tar_holds_only_the_client(tmp_path: Path) -> None:
    import tarfile

    binary = tmp_path / "docker"
    binary.write_bytes(b"\x7fELF-not-really")
    toolkit_image.write_cli_tar(binary, tmp_path / "cli.tar")
    with tarfile.open(tmp_path / "cli.tar") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["usr", "usr/local", "usr/local/bin", "usr/local/bin/docker"]
    assert all(m.uid == 0 and m.mtime == 0 for m in members.values())
    assert members["usr/local/bin/docker"].mode == 0o755 and members["usr/local/bin/docker"].size == 15


def test_a_failed_build_names_the_steps_own_error() -> None:
    step = "Step 9/13 : RUN pip install x\n ---> Running in 8fb97477db09\nERROR: No matching distribution found for x\n"
    stderr = "DEPRECATED: The legacy builder is deprecated\n            BuildKit is currently disabled; enable it\n"
    stderr += "The command '/bin/sh -c pip install x' returned a non-zero code: 1\n"
    proc = subprocess.CompletedProcess(["docker", "build", "."], 1, stdout=step, stderr=stderr)
    message = str(toolkit_image.build_failure(["docker", "build", "."], proc))
    assert message.startswith("docker build . failed:\nStep 9/13")
    assert "No matching distribution found for x" in message and "returned a non-zero code: 1" in message
    assert "DEPRECATED" not in message and "BuildKit" not in message


def test_the_wheel_is_built_from_what_pyproject_names() -> None:
    sources = toolkit_image.wheel_sources(ROOT)
    assert {"pyproject.toml", "README.md", "autocore", "deployer", "docgen", "pipelines", "templates"} <= set(sources)
    assert "tests" not in sources and ".git" not in sources


def test_the_dockerfile_follows_the_release_contract() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in text and "ARG DOCKER_CLI_IMAGE=docker:28-cli" in text
    assert re.search(r"^COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker$", text, re.M)
    assert re.search(r"^COPY dist/auto_toolkit-\*\.whl ", text, re.M)
    assert re.search(r"^USER 10001:10001$", text, re.M)
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :] == ["*", "!dist/auto_toolkit-*.whl"]  # the context is the wheel alone


# --- the lab -------------------------------------------------------------------------------------------------


def docker(lab: Lab, colour: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300):
    """The docker CLI against one lab colour, over its mutual TLS."""
    cert = lab.env["AUTO_DOCKER_CERT_PATH"]
    full_env = {**service_image.docker_env(colour, cert, lab.env), **(env or {})}
    argv = [service_image.docker_cli(lab.env), *args]
    return subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def built(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The toolkit's image on both colours, from a wheel of this work tree at the installed toolkit's version;
    built a second time from the same wheel, which must be a no-op. It stays (``lab down`` removes it)."""
    import importlib.util

    if importlib.util.find_spec("build") is None:
        unavailable("the `build` package is not installed: pip install -e '.[test]'")
    cert = lab.env["AUTO_DOCKER_CERT_PATH"]
    started = time.monotonic()
    wheel = toolkit_image.build_wheel(ROOT, tmp_path_factory.mktemp("dist"), version=toolkit_version())
    wheel_seconds = time.monotonic() - started
    first = toolkit_image.build_toolkit_image(wheel, cert_path=cert)
    second = toolkit_image.build_toolkit_image(wheel, cert_path=cert)
    first["wheel_seconds"] = round(wheel_seconds, 2)
    print(json.dumps({"first": first, "second": second}, indent=1))
    return {"first": first, "second": second, "wheel": wheel}


@pytest.mark.lab
def test_image_is_built_offline_runs_as_non_root_and_says_its_version(lab: Lab, built: dict[str, Any]) -> None:
    first, second = built["first"], built["second"]
    tag = first["tag"]
    assert first["version"] == toolkit_version() == toolkit_image.wheel_version(built["wheel"])
    assert tag == f"auto-lab/toolkit:{toolkit_image.image_tag(toolkit_version())}"
    assert second["built"] == [] and second["key"] == first["key"]  # the same wheel: nothing built again
    assert second["build_seconds"] < 5

    for colour in CLUSTERS:
        inspect = docker(lab, colour, "image", "inspect", "--format", "{{json .Config}}", tag)
        assert inspect.returncode == 0, inspect.stderr
        config = json.loads(inspect.stdout)
        assert config["User"] == "10001:10001"
        assert config["Labels"][toolkit_image.TOOLKIT_KEY_LABEL] == first["key"]

    script = "id -u; id -g; auto-deploy --version; auto-docs --version; auto-pipelines --version; docker --version"
    proc = docker(lab, RUN_ON, "run", "--rm", tag, "sh", "-c", script)
    assert proc.returncode == 0, proc.stderr
    uid, gid, deploy, docs, pipelines, client = proc.stdout.splitlines()
    assert (uid, gid) == ("10001", "10001")
    version = toolkit_version()
    assert [deploy, docs, pipelines] == [f"auto-deploy {version}", f"auto-docs {version}", f"auto-pipelines {version}"]
    assert client.startswith("Docker version ")

    # The wheels' compiled modules load (their system libraries are there), and auto-docs validates a spec.
    modules = "re2, jsonschema_rs, regress, yaml._yaml, cryptography.x509, markupsafe._speedups, rpds"
    contract = "/opt/auto-toolkit/lib/python3.11/site-packages/deployer/state/contract.yaml"
    smoke = f"python -c 'import {modules}' && auto-docs validate {contract}"
    proc = docker(lab, RUN_ON, "run", "--rm", tag, "sh", "-c", smoke)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 valid" in proc.stdout

    # Nothing left behind by the install: no pip cache, no wheel, no compiler, no byte code written.
    check = (
        "test ! -e /root/.cache && test ! -e /tmp/dist && test ! -e /home/auto/.cache"
        " && ! command -v gcc && ! command -v cc && test ! -e /opt/auto-toolkit/bin/pip"
        " && test ! -e /opt/auto-toolkit/lib/python3.11/site-packages/pip"
        " && find /opt/auto-toolkit -name '*.pyc' | wc -l"
    )
    proc = docker(lab, RUN_ON, "run", "--rm", "--user", "0", tag, "sh", "-c", check)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["0"], proc.stdout  # no .pyc

    measures = measure(lab, tag)
    measures.update(
        image_bytes=first["size_bytes"],
        base_bytes=first["base_size_bytes"],
        added_bytes=first["size_bytes"] - first["base_size_bytes"],
        wheel_bytes=first["wheel_bytes"],
        wheel_seconds=first["wheel_seconds"],
        build_seconds=first["build_seconds"],
        built=first["built"],
        second_call_seconds=second["seconds"],
    )
    print("toolkit image:", json.dumps(measures))


def measure(lab: Lab, tag: str) -> dict[str, Any]:
    """Cold start of ``auto-deploy --version``: ``docker run`` wall time, and the command's own time inside."""
    walls = []
    for _ in range(3):
        started = time.monotonic()
        proc = docker(lab, RUN_ON, "run", "--rm", tag, "auto-deploy", "--version")
        walls.append(round(time.monotonic() - started, 3))
        assert proc.returncode == 0, proc.stderr
    code = (
        "import subprocess, time\n"
        "runs = []\n"
        "for _ in range(3):\n"
        "    t = time.monotonic(); subprocess.run(['auto-deploy', '--version'], check=True, capture_output=True)\n"
        "    runs.append(round(time.monotonic() - t, 3))\n"
        "print(runs)\n"
    )
    proc = docker(lab, RUN_ON, "run", "--rm", tag, "python", "-c", code)
    assert proc.returncode == 0, proc.stderr
    return {"docker_run_version_seconds": walls, "inside_version_seconds": json.loads(proc.stdout)}


# --- the deploy component's script, in the image, against the live cluster -----------------------------------


class Relay:
    """TCP from ``127.0.0.1:PORT`` inside a network namespace to ``127.0.0.1:PORT`` of this process's namespace.

    The listening socket is made by a short-lived thread that entered the namespace (``setns`` changes only the
    calling thread's); the connections onward are made here. Bytes only: TLS stays between the two ends.
    """

    def __init__(self, colour: str, port: int) -> None:
        self.colour, self.netns, self.port = colour, CLUSTERS[colour].netns, port
        self.stop = threading.Event()
        self.connections: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.threads: list[threading.Thread] = []

    def _listen_in_netns(self) -> socket.socket:
        made: dict[str, Any] = {}

        def enter() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {self.netns}")
                made["socket"] = socket.create_server(("127.0.0.1", self.port))
            except OSError as exc:
                made["error"] = exc
            finally:
                os.close(fd)

        thread = threading.Thread(target=enter)  # it ends here: this process's other threads keep their namespace
        thread.start()
        thread.join()
        if "error" in made:
            raise made["error"]
        return made["socket"]

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
                with contextlib.suppress(OSError):
                    sock.shutdown(how)

    def _serve(self) -> None:
        assert self.listener is not None
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                inside, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            inside.settimeout(None)
            try:
                outside = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except OSError:
                inside.close()
                continue
            outside.settimeout(None)
            self.connections += [inside, outside]
            for a, b in ((inside, outside), (outside, inside)):
                thread = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                thread.start()
                self.threads.append(thread)

    def __enter__(self) -> Relay:
        self.listener = self._listen_in_netns()
        thread = threading.Thread(target=self._serve, daemon=True)
        thread.start()
        self.threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for sock in [*self.connections, self.listener]:
            if sock is not None:
                sock.close()
        for thread in self.threads:
            thread.join(timeout=5)


def component_job(service: str, tag: str) -> tuple[str, dict[str, Any]]:
    """The deploy-staging component's one job, its inputs and ``$[[ component.version ]]`` filled in as GitLab
    fills them for ``include: component: …/deploy-staging@VERSION`` (the version being the image's tag)."""
    from pipelines.gitlab_yaml import load_document
    from pipelines.interpolation import component_values, input_values, interpolate

    loaded = load_document(COMPONENT)
    inputs = input_values(
        loaded.spec,
        {
            "service": service,
            "environment": "lab",
            "url": "https://lab.example.test",
            "image": "auto-lab/web",  # with CI_COMMIT_SHORT_SHA=1 below: IMAGE=auto-lab/web:1, in the lab's daemons
            "resolve-image": "never",  # the lab has no registry
            "timeout": 120,
            "toolkit-image-repository": tag.rsplit(":", 1)[0],
        },
    )
    version = tag.rsplit(":", 1)[1]
    component = component_values(loaded.spec, {"name": COMPONENT.stem, "version": version, "reference": version})
    body = interpolate(loaded.body, inputs, component)
    jobs = {name: job for name, job in body.items() if isinstance(job, dict) and "script" in job}
    (name,) = jobs
    return name, jobs[name]


def expand(value: str, variables: dict[str, str]) -> str:
    """GitLab's expansion of ``$NAME`` and ``${NAME}`` in a job's ``variables:`` (an unknown name: empty)."""
    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: variables.get(m.group(1) or m.group(2), ""), value)


def as_lines(script: Any) -> list[str]:
    return [script] if isinstance(script, str) else [str(line) for line in script]


def run_job(
    lab: Lab, relay: Relay, tag: str, job: dict[str, Any], service: str, work: Path, files: dict[str, bytes]
) -> tuple[subprocess.CompletedProcess, float]:
    """``docker run`` of the job's script in ``tag`` on the daemon of ``relay``'s colour (the live one), in that
    colour's network namespace, as a GitLab docker executor would run it."""
    project_dir = PROJECT_DIR.format(service=service)
    uid, gid = 10001, 10001
    project = work / "project"
    project.mkdir()
    (project / "docker-stack.yml").write_text(STACK_FILE)
    secrets = work / "files"  # GitLab writes file-type variables into $CI_PROJECT_DIR.tmp
    secrets.mkdir(mode=0o700)
    for name, data in files.items():
        (secrets / name).write_bytes(data)
        (secrets / name).chmod(0o400)
    for path in (project, *project.iterdir(), secrets, *secrets.iterdir()):
        os.chown(path, uid, gid)  # a runner with FF_DISABLE_UMASK_FOR_DOCKER_EXECUTOR: the image's user owns them

    predefined = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": project_dir,
        "CI_PROJECT_PATH": f"auto/{service}",
        "CI_COMMIT_SHORT_SHA": "1",
        "CI_COMMIT_BRANCH": "feature",
        "CI_DEFAULT_BRANCH": "main",
        "CI_JOB_ID": "4242",
        "CI_JOB_URL": JOB_URL.format(service=service),
        "CI_JOB_NAME": "deploy-staging",
        "CI_ENVIRONMENT_NAME": "lab",
        "GITLAB_USER_LOGIN": USER_LOGIN,
    }
    project_variables = {
        "AUTO_STATE_URL": lab.env["AUTO_STATE_URL"],
        "AUTO_STATE_TOKEN": Path(lab.env["AUTO_STATE_TOKEN_FILE"]).read_text().strip(),  # masked, not a file
        **{name: f"{project_dir}.tmp/{name}" for name in files},  # file type: the value is the file's path
    }
    variables = {**predefined, **project_variables}
    for name, value in (job.get("variables") or {}).items():
        variables[name] = expand(str(value), variables)

    script = "\n".join(as_lines(job["script"]))
    after = "\n".join(as_lines(job.get("after_script") or []))
    # As the runner does: the script stops at its first failing command; after_script runs whatever the outcome.
    shell = f"(set -e\n{script}\n); code=$?; ({after}\n) >/dev/null 2>&1; exit $code"
    argv = ["run", "--rm", "--network", "host", "--workdir", project_dir]
    argv += ["--mount", f"type=bind,source={project},target={project_dir}"]
    argv += ["--mount", f"type=bind,source={secrets},target={project_dir}.tmp,readonly"]
    for name in sorted(variables):
        argv += ["--env", name]  # the value from the client's environment: no secret in a command line
    started = time.monotonic()
    proc = docker(lab, relay.colour, *argv, tag, "sh", "-c", shell, env=variables, timeout=300)
    return proc, time.monotonic() - started


def pem_bodies(files: dict[str, bytes]) -> list[str]:
    """Every base64 line of every PEM in ``files``."""
    lines = []
    for data in files.values():
        lines += [ln for ln in data.decode().splitlines() if ln and not ln.startswith("-----") and len(ln) >= 16]
    return lines


@pytest.fixture
def tls_files(lab: Lab) -> dict[str, bytes]:
    cert = Path(lab.env["AUTO_DOCKER_CERT_PATH"])
    files = {name: (cert / file).read_bytes() for name, file in FILE_VARIABLES.items()}
    files["AUTO_STATE_CA"] = Path(lab.env["AUTO_STATE_CA"]).read_bytes()
    return files


@pytest.fixture
def relay(lab: Lab) -> Iterator[Relay]:
    port = int(lab.env["AUTO_STATE_URL"].rsplit(":", 1)[1].rstrip("/"))
    with Relay(lab.live_colour(), port) as relayed:
        yield relayed


@pytest.mark.lab
def test_deploy_component_script_in_the_image_deploys_to_the_live_cluster(
    lab: Lab, built: dict[str, Any], stack: str, relay: Relay, tls_files: dict[str, bytes], tmp_path: Path
) -> None:
    tag = built["first"]["tag"]
    name, job = component_job(stack, tag)
    assert job["image"] == tag  # the component runs the toolkit image of its own release
    live = relay.colour
    assert lab.live_colour() == live

    proc, seconds = run_job(lab, relay, tag, job, stack, tmp_path, tls_files)
    output = proc.stdout + proc.stderr
    print(f"{name} in {tag}: exit {proc.returncode} in {seconds:.1f} s\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]

    # Deployed and converged on the live colour, with the image the job's IMAGE variable named.
    status = lab.cli("status", "--env", "lab", "--stack", stack)
    assert status.returncode == 0, status.stderr
    assert f"{stack}_web: 1/1 running" in status.stdout
    api = lab.docker(live)
    try:
        tasks = api.tasks(filters={"service": f"{stack}_web", "desired-state": "running"})
        assert [t["Status"]["State"] for t in tasks] == ["running"]
        assert tasks[0]["Spec"]["ContainerSpec"]["Image"].split("@")[0] == "auto-lab/web:1"
    finally:
        api.close()

    # Recorded in the state service, by the GitLab user, with the job's URL.
    from deployer.state.client import StateClient

    state = StateClient.from_env(lab.env)
    stacks = {s.name: s for s in state.get_environment("lab").clusters[live].stacks}
    assert [(s.name, s.image, s.replicas) for s in stacks[stack].services] == [("web", "auto-lab/web:1", 1)]
    history = state.history("lab", limit=50)
    deployed = [e for e in history if e["kind"] == "deployed" and e["detail"].get("stack") == stack]
    assert [(e["actor"], e["detail"]["result"], e["detail"]["colour"]) for e in deployed] == [
        (USER_LOGIN, "succeeded", live)
    ]
    locks = [e for e in history if e["detail"].get("purpose") == f"deploy {stack} to live"]
    assert sorted(e["kind"] for e in locks) == ["locked", "unlocked"]
    assert {(e["actor"], e["detail"]["job_url"]) for e in locks} == {(USER_LOGIN, JOB_URL.format(service=stack))}

    # The job's log holds no secret: no PEM body, no token.
    assert "section_start:" in output  # GITLAB_CI: the phases are collapsible sections
    assert_no_secret(output, tls_files, lab)


def assert_no_secret(output: str, files: dict[str, bytes], lab: Lab) -> None:
    token = Path(lab.env["AUTO_STATE_TOKEN_FILE"]).read_text().strip()
    assert token not in output
    assert "PRIVATE KEY" not in output and "BEGIN CERTIFICATE" not in output
    leaked = [line[:12] + "…" for line in pem_bodies(files) if line in output]
    assert not leaked, f"PEM lines in the job's output: {leaked}"


@pytest.mark.lab
def test_deploy_component_script_with_a_wrong_ca_is_refused_and_says_nothing_secret(
    lab: Lab, built: dict[str, Any], stack: str, relay: Relay, tls_files: dict[str, bytes], tmp_path: Path
) -> None:
    from deployer.lab import certs

    other_ca = certs.make_ca(f"not the lab's CA {uuid.uuid4().hex[:6]}")
    files = {**tls_files, "AUTO_DOCKER_CA": other_ca.cert_pem()}
    tag = built["first"]["tag"]
    _, job = component_job(stack, tag)
    proc, _ = run_job(lab, relay, tag, job, stack, tmp_path, files)
    output = proc.stdout + proc.stderr
    print(output[-2000:])
    assert proc.returncode == 4, output[-3000:]  # TLS verification failed: refused
    assert re.search(r"^Error: TLS .*certificate", output, re.M), output[-3000:]
    assert_no_secret(output, files, lab)
    api = lab.docker(relay.colour)
    try:
        assert api.services(filters={"label": f"com.docker.stack.namespace={stack}"}) == []
    finally:
        api.close()
