"""A private image registry beside the lab, for the pipeline tests: Debian's ``docker-registry`` (Distribution 2.8).

It stands in for the GitLab container registry: HTTPS with a certificate from the lab's CA (never plain HTTP,
never ``insecure-registries``), basic auth from an htpasswd file (bcrypt), storage in the test's directory.
It listens on the host end of the blue colour's veth pair (``10.213.1.1``), an address the lab itself made,
which both colours' daemons reach through their default route. The daemons trust the lab's CA for it through
``/etc/docker/certs.d/ADDRESS/ca.crt`` (the directory Docker reads per registry, at every connection), written
when the registry starts and removed when it stops.

Commands and files are data (:func:`serve_argv`; the configuration and the htpasswd entry are
:mod:`deployer.lab.registry`'s, which the lab's own registry uses); :class:`Registry` runs them.
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.lab import certs
from deployer.lab.layout import CLUSTERS, lab_dir
from deployer.lab.registry import config_text, htpasswd_line
from tests.support import stop_process

PORT = 5443
CERTS_D = Path("/etc/docker/certs.d")
READY_TIMEOUT = 15.0


def address(colour: str = "blue", port: int = PORT) -> str:
    """``HOST:PORT`` of the registry: the host end of ``colour``'s veth pair."""
    return f"{CLUSTERS[colour].host_address}:{port}"


def serve_argv(binary: str, config: Path) -> list[str]:
    """Run the registry with ``config``."""
    return [binary, "serve", str(config)]


@dataclass
class Registry:
    """A running registry; ``user`` and ``password`` are what a CI job's ``CI_REGISTRY_USER/PASSWORD`` hold."""

    root: Path
    binary: str
    address: str = field(default_factory=address)
    user: str = "gitlab-ci-token"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.pem"

    def start(self) -> Registry:
        """Write the certificate, htpasswd and configuration, trust the CA in Docker, start, wait until ready."""
        ca = certs.load_ca(lab_dir() / "certs")
        host = self.address.rsplit(":", 1)[0]
        certs.write_bundle(self.root / "tls", ca, certs.issue(ca, "auto-lab registry", ips=[host], server=True))
        (self.root / "htpasswd").write_text(htpasswd_line(self.user, self.password))
        config = self.root / "config.yml"
        config.write_text(config_text(self.root, self.address, secrets.token_hex(16)))
        trust = CERTS_D / self.address
        trust.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.ca_file, trust / "ca.crt")
        log = (self.root / "registry.log").open("ab")
        self.process = subprocess.Popen(
            serve_argv(self.binary, config), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
        self._wait_ready()
        return self

    def stop(self) -> None:
        """Stop the registry and take Docker's trust for it away again."""
        stop_process(self.process)
        shutil.rmtree(CERTS_D / self.address, ignore_errors=True)

    def get(self, path: str, *, auth: bool = True) -> tuple[int, Any]:
        """``GET https://ADDRESS/v2/PATH`` over verified TLS, with the job's credentials unless ``auth`` is false."""
        request = urllib.request.Request(f"https://{self.address}/v2/{path}")
        if auth:
            token = b64encode(f"{self.user}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process is not None and self.process.poll() is not None:
                log = (self.root / "registry.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the registry exited with {self.process.returncode}: {log}")
            try:
                if self.get("", auth=False)[0] == 401:  # up, and refusing anonymous access
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the registry did not answer on {self.address} within {READY_TIMEOUT:.0f} s")
            time.sleep(0.2)
