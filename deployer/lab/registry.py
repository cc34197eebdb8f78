"""The lab's private image registry, which every node pulls from: Debian's ``docker-registry`` (Distribution 2.8).

It runs while the lab has workers (``lab up --workers N``, N > 0): a task Swarm schedules on a worker finds its
image only there, never imported into the worker's daemon. It is private as a real one is: HTTPS with a
certificate from the lab's CA (never plain HTTP, never ``insecure-registries``), basic auth from a bcrypt htpasswd
file (user ``auto-lab``, a password made at the first start and kept in ``registry/password``), storage under
``registry/data``. It listens on the blue bridge, ``10.213.1.1:5000``: every node of both colours reaches that
address (green's through their default route, since it is the host's own). The daemons trust the lab's CA for it
through ``/etc/docker/certs.d/ADDRESS/ca.crt``, which Docker reads at each connection.

The lab pushes its own images from the blue manager (:func:`publish`: tag ``ADDRESS/REPOSITORY:TAG``, push with
the lab's credentials, skipped when the registry already holds that very image). A stack refers to them by that
reference and is deployed with ``--with-registry-auth`` and ``DOCKER_CONFIG=$AUTO_LAB_DOCKER_CONFIG`` (a docker
configuration holding the login, written here): the docker CLI hands the credentials to the nodes with the
service's spec, as a CI job logged in to its registry does.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError, DeployerError
from deployer.lab.argv import registry_argv
from deployer.lab.layout import CLUSTERS, LabPaths
from deployer.lab.processes import our_pid, stop_pids
from deployer.lab.runner import install_hint, spawn, wait_ready

PORT = 5000  # not the pipeline tests' own registries (5443, 5446) on the same address
USER = "auto-lab"
BINARY = "docker-registry"
CERTS_D = Path("/etc/docker/certs.d")
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
PUSH_TIMEOUT = 300
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
BCRYPT_ROUNDS = 6  # the registry checks the hash on every request of a pull; the password is 32 random bytes


def address() -> str:
    """``HOST:PORT`` of the registry: the blue bridge's address on the host."""
    return f"{CLUSTERS['blue'].host_address}:{PORT}"


def reference(ref: str) -> str:
    """The registry's reference for a local image reference: ``auto-lab/web:1`` → ``10.213.1.1:5000/auto-lab/web:1``."""
    return f"{address()}/{ref}"


class RegistryPaths:
    """The registry's files under the lab directory."""

    def __init__(self, lab: LabPaths) -> None:
        self.root = lab.registry
        self.config = self.root / "config.yml"
        self.tls = self.root / "tls"  # issued by deployer.lab.bundles
        self.htpasswd = self.root / "htpasswd"
        self.password = self.root / "password"
        self.data = self.root / "data"
        self.log = self.root / "registry.log"
        self.pid = self.root / "registry.pid"
        self.docker_config = self.root / "docker-config"  # DOCKER_CONFIG for a deploy: config.json with the login
        self.trust = CERTS_D / address()


def config_text(root: Path, listen: str, http_secret: str) -> str:
    """The configuration of a registry whose files are under ``root`` (as :class:`RegistryPaths` lays them out:
    TLS from ``root/tls``, htpasswd auth from ``root/htpasswd``, storage in ``root/data``); warnings only in its
    log. ``http_secret`` signs upload state (else the registry makes one up and warns). The suite's pipeline
    registry (tests/pipelines/registry.py) is written by this too."""
    return f"""\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root / "data"}
http:
  addr: {listen}
  secret: {http_secret}
  tls:
    certificate: {root / "tls" / "cert.pem"}
    key: {root / "tls" / "key.pem"}
auth:
  htpasswd:
    realm: auto-lab-registry
    path: {root / "htpasswd"}
"""


def htpasswd_line(user: str, password: str) -> str:
    """One htpasswd entry with a bcrypt hash, the only kind the registry accepts."""
    try:
        import bcrypt
    except ImportError:  # a test dependency of the toolkit; the lab's workers need it
        raise ConfigError("the lab's registry needs bcrypt for its htpasswd: pip install bcrypt") from None
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()}\n"


def docker_config_json(registry: str, user: str, password: str) -> str:
    """A docker CLI configuration logged in to ``registry``, as ``docker login`` writes it (without a store)."""
    token = b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"auth": token}}}, indent=2) + "\n"


def find_binary() -> str:
    """``docker-registry``; ConfigError saying what to install."""
    binary = shutil.which(BINARY)
    if binary is None:
        raise ConfigError(f"{BINARY} not found (the lab's workers pull from it): {install_hint(BINARY)}")
    return binary


def _write_private(path: Path, text: str) -> bool:
    """Write ``text`` (0600) unless the file holds it already; whether it was written."""
    if path.exists() and path.read_text() == text:
        return False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return True


def credentials(lab: LabPaths) -> tuple[str, str]:
    """The registry's user and password (made on first use)."""
    paths = RegistryPaths(lab)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o700)
    if not paths.password.exists():
        _write_private(paths.password, secrets.token_urlsafe(32))
    return USER, paths.password.read_text().strip()


def registry_pid(lab: LabPaths) -> int | None:
    """The pid of the running registry, or None."""
    paths = RegistryPaths(lab)
    return our_pid(paths.pid, str(paths.config))


def _request(lab: LabPaths, path: str, *, auth: bool, accept: str | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(f"https://{address()}/v2/{path}")
    if auth:
        user, password = credentials(lab)
        request.add_header("Authorization", "Basic " + b64encode(f"{user}:{password}".encode()).decode())
    if accept:
        request.add_header("Accept", accept)
    context = ssl.create_default_context(cafile=str(lab.ca_cert))
    # Straight to the lab's address: never through a proxy the environment may name.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    return opener.open(request, timeout=timeout)


def answering(lab: LabPaths, timeout: float = 1.0) -> bool:
    """Whether the registry answers over verified TLS (and refuses an anonymous client, as it must)."""
    try:
        with _request(lab, "", auth=False, timeout=timeout):
            return False  # it answered an anonymous client: not the lab's registry
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except (OSError, ValueError):
        return False


def manifest_config_digest(lab: LabPaths, repository: str, tag: str) -> str | None:
    """The config digest (the image ID) of ``repository:tag`` in the registry, or None when it is not there."""
    try:
        with _request(lab, f"{repository}/manifests/{tag}", auth=True, accept=MANIFEST_V2) as response:
            return (json.loads(response.read()).get("config") or {}).get("digest")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise DeployerError(f"the lab registry answered {exc.code} for {repository}:{tag}") from None
    except (OSError, ValueError) as exc:
        raise DeployerError(f"the lab registry at {address()} is not answering: {exc}") from None


def write_files(lab: LabPaths) -> None:
    """Password, htpasswd, configuration and the deploy's docker configuration, where missing or out of date."""
    paths = RegistryPaths(lab)
    user, password = credentials(lab)
    htpasswd_ok = False
    if paths.htpasswd.exists():
        entry = paths.htpasswd.read_text().strip()
        htpasswd_ok = entry.startswith(f"{user}:") and _bcrypt_matches(password, entry.split(":", 1)[1])
    if not htpasswd_ok:
        _write_private(paths.htpasswd, htpasswd_line(user, password))
    if not paths.config.exists() or f"addr: {address()}\n" not in paths.config.read_text():
        _write_private(paths.config, config_text(paths.root, address(), secrets.token_hex(16)))
    paths.docker_config.mkdir(parents=True, exist_ok=True)
    paths.docker_config.chmod(0o700)
    _write_private(paths.docker_config / "config.json", docker_config_json(address(), user, password))
    paths.data.mkdir(exist_ok=True)


def _bcrypt_matches(password: str, hashed: str) -> bool:
    try:
        import bcrypt
    except ImportError:
        return True  # cannot check: keep the file
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


def _trust(lab: LabPaths) -> None:
    """Docker's trust in the lab's CA for the registry's address (read by every daemon at each connection)."""
    trust = RegistryPaths(lab).trust
    ca = lab.ca_cert.read_bytes()
    if not (trust / "ca.crt").exists() or (trust / "ca.crt").read_bytes() != ca:
        trust.mkdir(parents=True, exist_ok=True)
        (trust / "ca.crt").write_bytes(ca)


def ensure_running(lab: LabPaths, *, restart: bool = False) -> str | None:
    """Start the registry when it does not answer (or ``restart``: its certificate changed); what was done."""
    binary = find_binary()
    paths = RegistryPaths(lab)
    write_files(lab)
    _trust(lab)
    pid = registry_pid(lab)
    if pid and not restart and answering(lab):
        return None
    if pid:
        stop_pids([pid], STOP_TIMEOUT)
    proc = spawn(registry_argv(binary, paths.config), log=paths.log, cwd=paths.root)
    paths.pid.write_text(f"{proc.pid}\n")
    wait_ready(
        lambda: answering(lab, timeout=1.0), proc, what="the lab registry", log=paths.log, timeout=READY_TIMEOUT,
        where=f" on https://{address()}",
    )  # fmt: skip
    return f"{'restarted' if pid else 'started'} the registry on {address()}"


def stop(lab: LabPaths) -> None:
    """Stop the registry and take Docker's trust for it away; its data stays (``lab down`` removes it)."""
    pid = registry_pid(lab)
    if pid:
        stop_pids([pid], STOP_TIMEOUT)
    shutil.rmtree(RegistryPaths(lab).trust, ignore_errors=True)


def status(lab: LabPaths) -> dict[str, Any]:
    """Whether the registry answers, and where."""
    return {
        "status": "up" if answering(lab) else "down",
        "pid": registry_pid(lab),
        "address": address(),
        "docker_config": str(RegistryPaths(lab).docker_config),
    }


def publish(api: Any, ref: str, lab: LabPaths) -> tuple[str, bool]:
    """Push the local image ``ref`` from the daemon behind ``api`` (a ``docker.APIClient``) to the registry.

    Returns the registry's reference and whether anything was pushed: nothing is when the registry holds
    the very same image (its manifest's config digest is the local image ID).
    """
    repository, _, tag = ref.rpartition(":")
    local_id = api.inspect_image(ref)["Id"]
    target = reference(ref)
    if manifest_config_digest(lab, repository, tag) == local_id:
        if not _has_tag(api, target):
            api.tag(ref, reference(repository), tag)
        return target, False
    api.tag(ref, reference(repository), tag)
    user, password = credentials(lab)
    deadline = time.monotonic() + PUSH_TIMEOUT
    for line in api.push(reference(repository), tag=tag, stream=True, decode=True, auth_config={
        "username": user, "password": password, "serveraddress": address(),
    }):  # fmt: skip
        if "error" in line:
            raise DeployerError(f"pushing {target} failed: {line.get('error')}")
        if time.monotonic() > deadline:
            raise DeployerError(f"pushing {target} did not finish within {PUSH_TIMEOUT} s")
    return target, True


def _has_tag(api: Any, ref: str) -> bool:
    import docker.errors

    try:
        api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return False
    return True
