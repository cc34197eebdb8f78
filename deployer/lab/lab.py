"""The embedded local lab: two single-node Swarm clusters (blue, green) and the state service.

Each colour is a real ``dockerd`` in its own network namespace, reachable from the host over a veth
pair at ``10.213.X.2:2376`` with mutual TLS only. The environment-state service runs on loopback
over HTTPS and is seeded with the environment ``lab`` (blue live). HAProxy (:mod:`deployer.lab.front`)
listens on 127.0.0.1:18000 in front of both colours' port 18080, the live colour's server ready and
the idle one in maintenance; a blue/green switch moves traffic through its admin socket.
Everything lives under one lab directory (``AUTO_LAB_DIR``, default ``/var/lib/auto-lab``) so that
``down`` can remove it all.

Commands go through :func:`run` (or :func:`spawn` for the long-running daemons); their argv lists
are built by pure ``*_argv`` functions so they can be unit-tested without root.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError, DeployerError, RefusedError
from deployer.lab import certs, front

# --- constants -------------------------------------------------------------------------------------

LAB_DIR_ENV = "AUTO_LAB_DIR"
DEFAULT_LAB_DIR = "/var/lib/auto-lab"
STATE_PORT_ENV = "AUTO_LAB_STATE_PORT"
DEFAULT_STATE_PORT = 8787
STATE_HOST = "127.0.0.1"
ENVIRONMENT = "lab"
LIVE_COLOUR = "blue"
ACTOR = "auto-deploy lab"
DOCKER_PORT = 2376
COLOURS = ("blue", "green")
BLUE_ADDRESS = "10.213.1.2"
GREEN_ADDRESS = "10.213.2.2"
IMAGE_REPOSITORY = "auto-lab/web"
IMAGE_TAGS = ("1", "2")
IMAGE_PORT = 8080
MARKER = ".auto-lab"  # only a directory holding this file is ever deleted by down()
BUSYBOX_CANDIDATES = ("/usr/bin/busybox", "/bin/busybox")
BUSYBOX_APPLETS = ("sh", "httpd", "wget", "echo", "sleep", "cat", "ls", "mkdir", "env", "ps", "kill", "nc")
DOCKERD_READY_TIMEOUT = 30.0
STATE_READY_TIMEOUT = 30.0
HAPROXY_BINARY = "/usr/sbin/haproxy"  # Debian's; /usr/sbin is not always in PATH
STOP_TIMEOUT = 15.0  # dockerd gets --shutdown-timeout 5 for its containers, plus its own shutdown


@dataclass(frozen=True)
class Cluster:
    """The fixed network plan of one colour."""

    colour: str
    netns: str
    host_if: str  # veth end on the host (interface names are limited to 15 characters)
    ns_if: str  # veth end inside the namespace
    host_address: str
    address: str  # the manager address: dockerd listens here
    prefix: int = 24

    @property
    def docker_host(self) -> str:
        """``DOCKER_HOST`` for this cluster."""
        return f"tcp://{self.address}:{DOCKER_PORT}"


CLUSTERS: dict[str, Cluster] = {
    "blue": Cluster("blue", "auto-lab-blue", "alab-blue", "alab-blue-ns", "10.213.1.1", BLUE_ADDRESS),
    "green": Cluster("green", "auto-lab-green", "alab-green", "alab-green-ns", "10.213.2.1", GREEN_ADDRESS),
}

# Where dockerd's "Devices cgroup isn't mounted" comes from: `ip netns exec` remounts /sys, so the
# cgroup hierarchies must be mounted again inside. Used when /proc/mounts shows none on the host.
FALLBACK_CGROUP_MOUNTS: tuple[tuple[str, str, str], ...] = (
    *(("cgroup", f"/sys/fs/cgroup/{c}", c) for c in ("cpu", "cpuacct", "cpuset", "memory")),
    *(("cgroup", f"/sys/fs/cgroup/{c}", c) for c in ("devices", "freezer", "blkio", "pids")),
    ("cgroup", "/sys/fs/cgroup/systemd", "none,name=systemd"),
    ("cgroup2", "/sys/fs/cgroup/unified", ""),
)
_GENERIC_MOUNT_OPTIONS = frozenset(
    {"rw", "ro", "relatime", "noatime", "nodiratime", "strictatime", "nosuid", "nodev", "noexec"}
)


# --- paths -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabPaths:
    """The layout of the lab directory."""

    root: Path

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def ca_cert(self) -> Path:
        return self.certs / "ca.pem"

    @property
    def client(self) -> Path:
        return self.certs / "client"

    @property
    def state_tls(self) -> Path:
        return self.certs / "state"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def token(self) -> Path:
        return self.state / "token"

    @property
    def state_db(self) -> Path:
        return self.state / "state.db"

    @property
    def state_log(self) -> Path:
        return self.state / "server.log"

    @property
    def state_pid(self) -> Path:
        return self.state / "server.pid"

    def colour(self, colour: str) -> ColourPaths:
        """The paths of one colour's daemon."""
        return ColourPaths(self.root / colour)


@dataclass(frozen=True)
class ColourPaths:
    """The files of one colour's ``dockerd``."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def tls(self) -> Path:
        return self.root / "tls"


def lab_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The lab directory: ``AUTO_LAB_DIR`` or ``/var/lib/auto-lab``; refuses dangerous values."""
    env = os.environ if environ is None else environ
    raw = env.get(LAB_DIR_ENV) or DEFAULT_LAB_DIR
    path = Path(raw)
    if not path.is_absolute():
        raise ConfigError(f"{LAB_DIR_ENV} must be an absolute path, not {raw!r}")
    path = Path(os.path.normpath(path))
    # down() deletes this directory: never accept / or a top-level system directory.
    if len(path.parts) < 3:
        raise ConfigError(f"{LAB_DIR_ENV}={raw} is too close to /: use a dedicated directory")
    return path


def state_port(environ: Mapping[str, str] | None = None) -> int:
    """The state service port: ``AUTO_LAB_STATE_PORT`` or 8787."""
    env = os.environ if environ is None else environ
    raw = env.get(STATE_PORT_ENV) or str(DEFAULT_STATE_PORT)
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ConfigError(f"{STATE_PORT_ENV} must be a TCP port number (1-65535), not {raw!r}")
    return port


def state_url(port: int | None = None) -> str:
    """The base URL of the lab's state service."""
    return f"https://{STATE_HOST}:{state_port() if port is None else port}"


def client_cert_dir() -> Path:
    """The Docker client bundle (``ca.pem``, ``cert.pem``, ``key.pem``) for both clusters."""
    return LabPaths(lab_dir()).client


# --- the runner ------------------------------------------------------------------------------------


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: bytes | None = None,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
    detail_lines: int = 1,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; on failure when ``check``, DeployerError with the last
    ``detail_lines`` lines of its output (one for short commands, more for a build's log)."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input.decode() if input is not None else None,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"{argv[0]} not found: {_install_hint(argv[0])}") from exc
    except subprocess.TimeoutExpired as exc:
        raise DeployerError(f"{shlex.join(argv)} did not finish within {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        lines = [line.rstrip() for line in (proc.stderr or proc.stdout or "").splitlines() if line.strip()]
        detail = "\n".join(lines[-detail_lines:]).strip() or f"exit status {proc.returncode}"
        separator = "\n" if "\n" in detail else " "  # a build's log starts on a line of its own
        raise DeployerError(f"{shlex.join(argv)} failed:{separator}{detail}")
    return proc


def spawn(
    argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a long-running command detached (own session, output appended to ``log``)."""
    with open(log, "ab") as out:
        try:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the CLI's exit and its Ctrl-C
                close_fds=True,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        except FileNotFoundError as exc:
            raise ConfigError(f"{argv[0]} not found: {_install_hint(argv[0])}") from exc


def _install_hint(program: str) -> str:
    hints = {
        "dockerd": "apt-get install docker.io",
        "ip": "apt-get install iproute2",
        "mount": "apt-get install mount",
        "umount": "apt-get install mount",
        "busybox": "apt-get install busybox-static",
        "haproxy": "apt-get install haproxy",
    }
    return hints.get(Path(program).name, "install it and retry")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _log_tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            return _last_line(fh.read().decode(errors="replace"))
    except OSError:
        return ""


# --- pure argv builders ----------------------------------------------------------------------------


def netns_add_argv(cluster: Cluster) -> list[str]:
    """Create the colour's network namespace."""
    return ["ip", "netns", "add", cluster.netns]


def veth_add_argv(cluster: Cluster) -> list[str]:
    """Create the veth pair with one end already inside the namespace."""
    return [
        "ip", "link", "add", cluster.host_if, "type", "veth",
        "peer", "name", cluster.ns_if, "netns", cluster.netns,
    ]  # fmt: skip


def network_config_argvs(cluster: Cluster) -> list[list[str]]:
    """Addresses, links and the default route; every command is idempotent (``replace``/``set``)."""
    ns = ["ip", "-n", cluster.netns]
    return [
        ["ip", "addr", "replace", f"{cluster.host_address}/{cluster.prefix}", "dev", cluster.host_if],
        ["ip", "link", "set", cluster.host_if, "up"],
        [*ns, "link", "set", "lo", "up"],
        [*ns, "addr", "replace", f"{cluster.address}/{cluster.prefix}", "dev", cluster.ns_if],
        [*ns, "link", "set", cluster.ns_if, "up"],
        [*ns, "route", "replace", "default", "via", cluster.host_address],
    ]


def parse_cgroup_mounts(proc_mounts: str) -> list[tuple[str, str, str]]:
    """The host's cgroup mounts under /sys/fs/cgroup as (fstype, mountpoint, options) to replay."""
    found: list[tuple[str, str, str]] = []
    for line in proc_mounts.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] not in ("cgroup", "cgroup2"):
            continue
        mountpoint = _unescape_mount(fields[1])
        if not mountpoint.startswith("/sys/fs/cgroup"):
            continue
        opts = [o for o in fields[3].split(",") if o not in _GENERIC_MOUNT_OPTIONS]
        if fields[2] == "cgroup2":
            opts = []  # e.g. nsdelegate is only allowed in the initial namespace; defaults are fine
        elif any(o.startswith("name=") for o in opts) and not [
            o for o in opts if not o.startswith("name=") and o not in ("xattr", "clone_children")
        ]:
            opts.insert(0, "none")  # a named hierarchy without controllers
        found.append((fields[2], mountpoint, ",".join(opts)))
    return found


def cgroup_remount_script(mounts: Iterable[tuple[str, str, str]]) -> str:
    """Shell script run inside ``ip netns exec``: remount the cgroup hierarchies, then exec "$@"."""
    mounts = list(mounts) or list(FALLBACK_CGROUP_MOUNTS)
    lines = ["set -e"]
    if any(mp == "/sys/fs/cgroup" for _, mp, _ in mounts):
        lines.append("mount -t cgroup2 cgroup2 /sys/fs/cgroup")  # pure cgroup v2 host
    else:
        lines.append("mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup")
        for fstype, mountpoint, opts in mounts:
            mp = shlex.quote(mountpoint)
            opt = f" -o {shlex.quote(opts)}" if opts else ""
            lines.append(f"mkdir -p {mp} && mount -t {fstype}{opt} {fstype} {mp}")
    # A system containerd would be picked up by dockerd 20.10 instead of its own one: hide its
    # socket in this (private) mount namespace so that each colour runs its own containerd.
    lines.append("if [ -S /run/containerd/containerd.sock ]; then mount -t tmpfs tmpfs /run/containerd; fi")
    lines.append('exec "$@"')
    return "\n".join(lines)


def dockerd_argv(cluster: Cluster, paths: ColourPaths, *, dockerd: str = "dockerd") -> list[str]:
    """The ``dockerd`` command line of one colour (to run inside its namespace)."""
    return [
        dockerd,
        "--data-root", str(paths.data),
        "--exec-root", str(paths.exec_root),
        "--pidfile", str(paths.pidfile),
        "-H", f"unix://{paths.socket}",
        "-H", f"tcp://{cluster.address}:{DOCKER_PORT}",
        "--tlsverify",
        "--tlscacert", str(paths.tls / "ca.pem"),
        "--tlscert", str(paths.tls / "cert.pem"),
        "--tlskey", str(paths.tls / "key.pem"),
        # Own cgroup parent and containerd namespace: down() finds the containers by cgroup, and
        # the two daemons never see each other's containers.
        "--cgroup-parent", f"/{cluster.netns}",
        "--containerd-namespace", cluster.netns,
        "--containerd-plugins-namespace", f"{cluster.netns}-plugins",
        "--shutdown-timeout", "5",
    ]  # fmt: skip


def netns_dockerd_argv(
    cluster: Cluster, paths: ColourPaths, cgroup_mounts: Iterable[tuple[str, str, str]], *, dockerd: str
) -> list[str]:
    """``ip netns exec NS sh -c <remount cgroups> … dockerd …``: the full daemon command."""
    script = cgroup_remount_script(cgroup_mounts)
    return ["ip", "netns", "exec", cluster.netns, "sh", "-c", script, "auto-lab-dockerd",
            *dockerd_argv(cluster, paths, dockerd=dockerd)]  # fmt: skip


def state_server_argv(paths: LabPaths, port: int, *, python: str = sys.executable) -> list[str]:
    """The state service command (contract with ``deployer state serve``)."""
    return [
        python, "-m", "deployer", "state", "serve",
        "--db", str(paths.state_db),
        "--listen", f"{STATE_HOST}:{port}",
        "--tls-cert", str(paths.state_tls / "cert.pem"),
        "--tls-key", str(paths.state_tls / "key.pem"),
        "--token-file", str(paths.token),
    ]  # fmt: skip


IMAGE_REVISION_LABEL = "org.auto-lab.image-revision"
IMAGE_REVISION = "2"  # bump when image_changes() changes, so `lab up` re-imports


def image_changes(version: str) -> list[str]:
    """Dockerfile instructions applied at import: version, PATH and an HTTP server on 8080."""
    # PID 1 ignores SIGTERM unless it traps it: without the trap every task stop waits out
    # Swarm's 10 s grace period, and rolling updates crawl.
    script = (
        'mkdir -p /www && echo "version $APP_VERSION" > /www/index.html && echo ok > /www/health'
        f" && httpd -f -p {IMAGE_PORT} -h /www & pid=$!; trap 'kill $pid; exit 0' TERM INT; wait $pid"
    )
    return [
        f"ENV APP_VERSION={version}",
        "ENV PATH=/bin",
        f"EXPOSE {IMAGE_PORT}",
        f"LABEL org.opencontainers.image.version={version}",
        f"LABEL {IMAGE_REVISION_LABEL}={IMAGE_REVISION}",
        "CMD " + json.dumps(["/bin/sh", "-c", script]),
    ]


def seed_body() -> dict[str, Any]:
    """The ``lab`` environment record the state service is seeded with."""
    return {
        "live_colour": LIVE_COLOUR,
        "clusters": {c.colour: {"manager_address": c.address, "docker_port": DOCKER_PORT} for c in CLUSTERS.values()},
        "actor": ACTOR,
    }


def env_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that point the deployer, the switch and a load at the lab."""
    paths = LabPaths(lab_dir(environ))
    return {
        "AUTO_STATE_URL": state_url(state_port(environ)),
        "AUTO_STATE_CA": str(paths.ca_cert),
        "AUTO_STATE_TOKEN_FILE": str(paths.token),
        "AUTO_DOCKER_CERT_PATH": str(paths.client),
        **front.env_values(paths.root, environ),
    }


def env_lines(environ: Mapping[str, str] | None = None) -> str:
    """Shell lines pointing the deployer at the lab (``eval "$(auto-deploy lab env)"``)."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env_values(environ).items())


# --- small helpers ---------------------------------------------------------------------------------


def _unescape_mount(field: str) -> str:
    """Undo the octal escapes of /proc/mounts (``\\040`` for a space …)."""
    return field.encode().decode("unicode_escape") if "\\" in field else field


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    try:
        # A zombie has exited: only its parent has not reaped it yet.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _our_pid(pidfile: Path, needle: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and its command line mentions ``needle``."""
    pid = _read_pid(pidfile)
    if pid and _alive(pid) and any(needle in arg for arg in _cmdline(pid)):
        return pid
    return None


def _write_private(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data.encode())
    finally:
        os.close(fd)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (dockerd's local API), for a cheap readiness probe."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def docker_ping(sock: Path, timeout: float = 2.0) -> bool:
    """True when the daemon behind ``sock`` answers ``/_ping`` with OK."""
    conn = _UnixHTTPConnection(sock, timeout)
    try:
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        return resp.status == 200 and resp.read().strip() == b"OK"
    except OSError:
        return False
    finally:
        conn.close()


def _is_static_elf(path: str) -> bool:
    """True when ``path`` is an ELF executable without a program interpreter (statically linked)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if head[:4] != b"\x7fELF":
                return False
            is64, endian = head[4] == 2, "<" if head[5] == 1 else ">"
            if is64:
                phoff, phentsize, phnum = (
                    struct.unpack(endian + "Q", head[32:40])[0],
                    *struct.unpack(endian + "HH", head[54:58]),
                )
            else:
                phoff, phentsize, phnum = (
                    struct.unpack(endian + "I", head[28:32])[0],
                    *struct.unpack(endian + "HH", head[42:46]),
                )
            fh.seek(phoff)
            table = fh.read(phentsize * phnum)
    except OSError:
        return False
    pt_interp = 3
    return all(
        struct.unpack(endian + "I", table[i * phentsize : i * phentsize + 4])[0] != pt_interp for i in range(phnum)
    )


def find_busybox() -> str:
    """The static busybox the lab image is made of; ConfigError saying what to install."""
    for candidate in BUSYBOX_CANDIDATES:
        if os.path.exists(candidate) and _is_static_elf(candidate):
            return candidate
    raise ConfigError("a static busybox was not found: apt-get install busybox-static")


def rootfs_tar(busybox: str) -> bytes:
    """A tiny root filesystem: /bin/busybox, applet symlinks, /tmp, /www. Deterministic bytes."""
    buf = io.BytesIO()

    def add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 0
        tar.addfile(info)

    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin", "etc", "www", "proc", "sys", "dev"):
            add_dir(tar, name)
        add_dir(tar, "tmp", 0o1777)
        data = Path(busybox).read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        tar.addfile(info, io.BytesIO(data))
        for applet in BUSYBOX_APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mode, link.mtime = tarfile.SYMTYPE, "busybox", 0o777, 0
            tar.addfile(link)
        for name, text in (("etc/passwd", "root:x:0:0:root:/:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
            raw = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(raw), 0o644, 0
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


# --- preconditions ---------------------------------------------------------------------------------


def _require_root() -> None:
    if os.geteuid() != 0:
        raise ConfigError("the lab needs root: run it with sudo")


def _require_tools() -> str:
    """Check the host tools the lab uses; return the dockerd path."""
    for tool in ("ip", "mount", "umount"):
        if not shutil.which(tool):
            raise ConfigError(f"{tool} not found: {_install_hint(tool)}")
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise ConfigError("dockerd not found: apt-get install docker.io")
    if not (shutil.which("haproxy") or Path(HAPROXY_BINARY).exists()):  # checked before anything starts
        raise ConfigError(f"haproxy not found: {_install_hint('haproxy')}")
    return dockerd


# --- certificates ----------------------------------------------------------------------------------


def _ensure_certs(paths: LabPaths) -> set[str]:
    """Create the CA and every bundle that is missing or not signed by it; return what was (re)issued."""
    paths.certs.mkdir(parents=True, exist_ok=True)
    paths.certs.chmod(0o700)
    try:
        ca = certs.load_ca(paths.certs)
    except (OSError, ValueError):
        ca = certs.make_ca("AUTO lab CA")
        certs.write_ca(paths.certs, ca)
    issued: set[str] = set()
    wanted: dict[str, tuple[Path, dict[str, Any]]] = {
        "client": (paths.client, {"client": True}),
        "state": (paths.state_tls, {"server": True, "ips": [STATE_HOST], "dns": ["localhost"]}),
    }
    for cluster in CLUSTERS.values():
        wanted[cluster.colour] = (
            paths.colour(cluster.colour).tls,
            {"server": True, "ips": [cluster.address], "dns": [f"{cluster.colour}.auto-lab"]},
        )
    for name, (directory, options) in wanted.items():
        same_ca = (directory / "ca.pem").exists() and (directory / "ca.pem").read_bytes() == ca.cert_pem()
        if same_ca and certs.bundle_is_valid(directory, ca):
            continue
        certs.write_bundle(directory, ca, certs.issue(ca, f"auto-lab {name}", **options))
        issued.add(name)
    return issued


# --- network ---------------------------------------------------------------------------------------


def _netns_list() -> set[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _ensure_network(cluster: Cluster) -> None:
    if cluster.netns not in _netns_list():
        run(netns_add_argv(cluster))
    if not Path("/sys/class/net", cluster.host_if).exists():
        run(veth_add_argv(cluster))
    for argv in network_config_argvs(cluster):
        run(argv)
    # `ip netns exec` bind-mounts this over /etc/resolv.conf: nothing listens on the namespace's
    # 127.0.0.1:53, so Swarm's pull attempt fails at once instead of after a 30 s DNS timeout.
    etc = Path("/etc/netns", cluster.netns)
    etc.mkdir(parents=True, exist_ok=True)
    resolv = etc / "resolv.conf"
    if not resolv.exists() or resolv.read_text() != "nameserver 127.0.0.1\n":
        resolv.write_text("nameserver 127.0.0.1\n")


# --- dockerd ---------------------------------------------------------------------------------------


def _dockerd_pid(paths: ColourPaths) -> int | None:
    return _our_pid(paths.pidfile, str(paths.data))


def _start_dockerd(cluster: Cluster, paths: LabPaths, dockerd: str) -> subprocess.Popen[bytes]:
    cpaths = paths.colour(cluster.colour)
    for directory in (cpaths.root, cpaths.data, cpaths.exec_root):
        directory.mkdir(parents=True, exist_ok=True)
    cpaths.root.chmod(0o700)
    cpaths.pidfile.unlink(missing_ok=True)  # stale: its process is gone (checked by the caller)
    mounts = parse_cgroup_mounts(Path("/proc/self/mounts").read_text())
    argv = netns_dockerd_argv(cluster, cpaths, mounts, dockerd=dockerd)
    return spawn(argv, log=cpaths.log)


def _wait_dockerd(cluster: Cluster, paths: LabPaths, proc: subprocess.Popen[bytes] | None) -> None:
    cpaths = paths.colour(cluster.colour)
    deadline = time.monotonic() + DOCKERD_READY_TIMEOUT
    while time.monotonic() < deadline:
        if docker_ping(cpaths.socket, timeout=1.0):
            return
        if proc is not None and proc.poll() is not None:
            raise DeployerError(
                f"the {cluster.colour} dockerd exited ({proc.returncode}): {_log_tail(cpaths.log)} (log: {cpaths.log})"
            )
        time.sleep(0.2)
    raise DeployerError(
        f"the {cluster.colour} dockerd did not answer within {DOCKERD_READY_TIMEOUT:.0f} s:"
        f" {_log_tail(cpaths.log)} (log: {cpaths.log})"
    )


def _docker_client(cpaths: ColourPaths) -> Any:
    import docker  # imported lazily: `lab env` and `lab status` do not need it

    return docker.DockerClient(base_url=f"unix://{cpaths.socket}", version="auto", timeout=60)


def _ensure_swarm(cluster: Cluster, client: Any) -> str:
    swarm = client.info().get("Swarm", {})
    state = swarm.get("LocalNodeState", "")
    if state == "active" and swarm.get("ControlAvailable"):
        return "existed"
    if state != "inactive":
        raise DeployerError(
            f"the {cluster.colour} daemon is in swarm state {state!r}, not a manager:"
            " run `auto-deploy lab down` then `auto-deploy lab up`"
        )
    client.swarm.init(advertise_addr=cluster.address, listen_addr=f"{cluster.address}:2377")
    return "created"


def _ensure_images(client: Any, rootfs: list[bytes]) -> list[str]:
    """Import the missing ``auto-lab/web`` tags; ``rootfs`` caches the tar between daemons."""
    import docker

    imported = []
    for tag in IMAGE_TAGS:
        ref = f"{IMAGE_REPOSITORY}:{tag}"
        try:
            labels = client.images.get(ref).labels or {}
            if labels.get(IMAGE_REVISION_LABEL) == IMAGE_REVISION:
                continue  # up to date; an older lab's image is re-imported below
        except docker.errors.ImageNotFound:
            pass
        if not rootfs:
            rootfs.append(rootfs_tar(find_busybox()))
        out = client.api.import_image(src=rootfs[0], repository=IMAGE_REPOSITORY, tag=tag, changes=image_changes(tag))
        if '"error"' in str(out):
            raise DeployerError(f"importing {ref} failed: {_last_line(str(out))}")
        imported.append(ref)
    return imported


# --- state service ---------------------------------------------------------------------------------


def _state_pid(paths: LabPaths) -> int | None:
    return _our_pid(paths.state_pid, str(paths.state_db))


def _state_healthy(paths: LabPaths, port: int, timeout: float = 2.0) -> bool:
    import requests

    if not paths.ca_cert.exists():
        return False
    try:
        resp = requests.get(f"{state_url(port)}/v1/health", verify=str(paths.ca_cert), timeout=timeout)
        return resp.status_code == 200 and resp.json().get("status") == "ok"
    except (requests.RequestException, ValueError):
        return False


def _start_state(paths: LabPaths, port: int) -> subprocess.Popen[bytes]:
    paths.state.mkdir(parents=True, exist_ok=True)
    paths.state.chmod(0o700)
    if not paths.token.exists():
        _write_private(paths.token, secrets.token_urlsafe(32))
    env = dict(os.environ)
    # Run this very source tree, whatever the current directory is.
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    proc = spawn(state_server_argv(paths, port), log=paths.state_log, env=env, cwd=paths.state)
    paths.state_pid.write_text(f"{proc.pid}\n")
    return proc


def _wait_state(paths: LabPaths, port: int, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + STATE_READY_TIMEOUT
    while time.monotonic() < deadline:
        if _state_healthy(paths, port, timeout=1.0):
            return
        if proc is not None and proc.poll() is not None:
            raise DeployerError(
                f"the state service exited ({proc.returncode}): {_log_tail(paths.state_log)} (log: {paths.state_log})"
            )
        time.sleep(0.2)
    raise DeployerError(
        f"the state service did not answer on {state_url(port)} within {STATE_READY_TIMEOUT:.0f} s:"
        f" {_log_tail(paths.state_log)} (log: {paths.state_log})"
    )


def _live_colour(paths: LabPaths, port: int) -> str:
    """The live colour of ``lab`` as the state service says (HAProxy's config follows it)."""
    import requests

    url = f"{state_url(port)}/v1/environments/{ENVIRONMENT}"
    try:
        answer = requests.get(url, verify=str(paths.ca_cert), timeout=10)
        answer.raise_for_status()
        return str(answer.json()["live_colour"])
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise RefusedError(f"reading the live colour from the state service failed: {type(exc).__name__}") from exc


def _seed_state(paths: LabPaths, port: int) -> str:
    """Make sure environment ``lab`` exists with the lab's addresses; "created" or "existed".

    An existing record is left alone when its addresses match (a PUT would bump its revision on
    every ``up``), and its live colour is kept (it only changes by switch; a PUT would get 409).
    """
    import requests

    token = paths.token.read_text().strip()
    url = f"{state_url(port)}/v1/environments/{ENVIRONMENT}"
    kwargs: dict[str, Any] = {
        "headers": {"Authorization": f"Bearer {token}"},
        "verify": str(paths.ca_cert),
        "timeout": 10,
    }
    body = seed_body()
    try:
        current = requests.get(url, **kwargs)
        if current.status_code == 200:
            record = current.json()
            clusters = record.get("clusters", {})
            if all(
                {k: clusters.get(colour, {}).get(k) for k in spec} == spec for colour, spec in body["clusters"].items()
            ):
                return "existed"
            body["live_colour"] = record.get("live_colour", LIVE_COLOUR)
        resp = requests.put(url, json=body, **kwargs)
    except (requests.RequestException, ValueError) as exc:
        raise RefusedError(f"seeding the state service failed: {type(exc).__name__}") from exc
    if resp.status_code in (200, 201):
        return "created" if resp.status_code == 201 else "existed"
    raise RefusedError(f"seeding environment {ENVIRONMENT!r} failed: HTTP {resp.status_code} {resp.text[:200].strip()}")


# --- stopping --------------------------------------------------------------------------------------


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _stop_pids(pids: Iterable[int], timeout: float) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL whatever is left."""
    pending = [pid for pid in set(pids) if pid != os.getpid() and _alive(pid)]
    for pid in pending:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        _reap()
        pending = [pid for pid in pending if _alive(pid)]
        if pending:
            time.sleep(0.1)
    for pid in pending:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pending and time.monotonic() < deadline:
        _reap()
        pending = [pid for pid in pending if _alive(pid)]
        if pending:
            time.sleep(0.05)


def _reap() -> None:
    """Reap children we spawned in this process (e.g. `up` then `down` in one test run)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _netns_inode(name: str) -> int | None:
    try:
        return os.stat(Path("/run/netns", name)).st_ino
    except OSError:
        return None


def _leftover_pids(paths: LabPaths) -> set[int]:
    """Processes of the lab: in a lab netns, in a lab cgroup, or a containerd/shim of the lab."""
    ns_inodes = {ino for c in CLUSTERS.values() if (ino := _netns_inode(c.netns)) is not None}
    needle = str(paths.root) + "/"
    daemons = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy", "runc")
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        with contextlib.suppress(OSError):
            if ns_inodes and os.stat(entry / "ns" / "net").st_ino in ns_inodes:
                found.add(pid)
                continue
        args = _cmdline(pid)
        if args and Path(args[0]).name in daemons and any(needle in a for a in args):
            found.add(pid)
    for cluster in CLUSTERS.values():
        found |= _cgroup_pids(f"/{cluster.netns}")
    return {pid for pid in found if _alive(pid)}


def _cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup directory named ``parent`` under the host's hierarchies, deepest first."""
    dirs: list[Path] = []
    root = Path("/sys/fs/cgroup")
    candidates = [root / parent.lstrip("/")]
    with contextlib.suppress(OSError):
        candidates += [h / parent.lstrip("/") for h in root.iterdir() if h.is_dir()]
    for top in candidates:
        if top.is_dir():
            for dirpath, _dirnames, _files in os.walk(top):
                dirs.append(Path(dirpath))
    return sorted(set(dirs), key=lambda p: len(p.parts), reverse=True)


def _cgroup_pids(parent: str) -> set[int]:
    pids: set[int] = set()
    for directory in _cgroup_dirs(parent):
        with contextlib.suppress(OSError, ValueError):
            pids |= {int(x) for x in (directory / "cgroup.procs").read_text().split()}
    return pids


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first."""
    prefix = str(root).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2:
            mountpoint = _unescape_mount(fields[1])
            if mountpoint == str(root) or mountpoint.startswith(prefix):
                points.append(mountpoint)
    return sorted(points, key=lambda p: p.count("/"), reverse=True)


def _unmount_all(root: Path) -> None:
    # Leftover nsfs mounts under the exec-roots (…/exec/netns/*) keep directories busy.
    for _ in range(5):  # stacked mounts show up again after the top one goes
        points = _mounts_under(root)
        if not points:
            return
        for point in points:
            if run(["umount", point], check=False).returncode != 0:
                run(["umount", "-l", point], check=False)


# --- public API ------------------------------------------------------------------------------------


def up() -> dict[str, Any]:
    """Bring the lab up, or repair what is missing; idempotent. Returns a description of the lab."""
    _require_root()
    dockerd = _require_tools()
    paths = LabPaths(lab_dir())
    port = state_port()
    started = time.monotonic()
    actions: list[str] = []
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o755)
    (paths.root / MARKER).touch()

    reissued = _ensure_certs(paths)
    if reissued:
        actions.append("issued certificates: " + ", ".join(sorted(reissued)))

    procs: dict[str, subprocess.Popen[bytes] | None] = {}
    for cluster in CLUSTERS.values():
        _ensure_network(cluster)
        cpaths = paths.colour(cluster.colour)
        pid = _dockerd_pid(cpaths)
        if pid and cluster.colour in reissued:  # it serves the old certificate: restart it
            _stop_pids([pid], STOP_TIMEOUT)
            pid = None
        if pid is None:
            # What a killed daemon left (containerd, shims, containers whose PID 1 ignores
            # SIGTERM): kill it quickly, Swarm reschedules the tasks.
            _stop_pids(_leftover_pids_of(cluster, paths), 1)
            procs[cluster.colour] = _start_dockerd(cluster, paths, dockerd)
            actions.append(f"started {cluster.colour} dockerd")
        else:
            procs[cluster.colour] = None
    rootfs: list[bytes] = []
    for cluster in CLUSTERS.values():  # both daemons start in parallel; wait for each here
        try:
            _wait_dockerd(cluster, paths, procs[cluster.colour])
        except DeployerError:
            if procs[cluster.colour] is None:
                raise
            # A killed daemon's containerd can still hold its socket for a moment: clear it, try once more.
            _stop_pids(_leftover_pids_of(cluster, paths), 3)
            procs[cluster.colour] = _start_dockerd(cluster, paths, dockerd)
            _wait_dockerd(cluster, paths, procs[cluster.colour])
            actions.append(f"restarted {cluster.colour} dockerd after a failed start")
        client = _docker_client(paths.colour(cluster.colour))
        try:
            if _ensure_swarm(cluster, client) == "created":
                actions.append(f"initialised the {cluster.colour} swarm")
            actions += [f"imported {ref} into {cluster.colour}" for ref in _ensure_images(client, rootfs)]
        finally:
            client.close()

    pid = _state_pid(paths)
    if pid and "state" in reissued:
        _stop_pids([pid], 5)
        pid = None
    proc = None
    if pid is None or not _state_healthy(paths, port):
        if pid is not None:  # alive but not answering: replace it
            _stop_pids([pid], 5)
        proc = _start_state(paths, port)
        actions.append("started the state service")
    _wait_state(paths, port, proc)
    seeded = _seed_state(paths, port)
    if seeded == "created":
        actions.append(f"seeded environment {ENVIRONMENT!r} ({LIVE_COLOUR} live)")
    addresses = {c.colour: c.address for c in CLUSTERS.values()}
    done = front.ensure(paths.root, addresses, _live_colour(paths, port), front.front_port())
    if done:
        actions.append(done)

    description = describe(paths, port)
    description.update(
        seeded=seeded,
        actions=actions,
        images=[f"{IMAGE_REPOSITORY}:{tag}" for tag in IMAGE_TAGS],
        seconds=round(time.monotonic() - started, 2),
    )
    return description


def _leftover_pids_of(cluster: Cluster, paths: LabPaths) -> set[int]:
    """Processes a dead colour left behind (its containerd, shims, containers)."""
    needle = str(paths.colour(cluster.colour).root) + "/"
    pids = _cgroup_pids(f"/{cluster.netns}")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            args = _cmdline(int(entry.name))
            if args and Path(args[0]).name.startswith("containerd") and any(needle in a for a in args):
                pids.add(int(entry.name))
    return pids


def describe(paths: LabPaths | None = None, port: int | None = None) -> dict[str, Any]:
    """The static description of the lab: addresses, files, URLs (no probing)."""
    paths = paths or LabPaths(lab_dir())
    port = state_port() if port is None else port
    return {
        "lab_dir": str(paths.root),
        "environment": ENVIRONMENT,
        "live_colour": LIVE_COLOUR,
        "clusters": {
            c.colour: {
                "netns": c.netns,
                "manager_address": c.address,
                "docker_port": DOCKER_PORT,
                "docker_host": c.docker_host,
                "host_address": c.host_address,
            }
            for c in CLUSTERS.values()
        },
        "client_cert_dir": str(paths.client),
        "state": {"url": state_url(port), "ca": str(paths.ca_cert), "token_file": str(paths.token)},
    }


def status() -> dict[str, Any]:
    """Which components are up: ``{"up": bool, "blue": {...}, "green": {...}, "state": {...}}``."""
    paths = LabPaths(lab_dir())
    port = state_port()
    netns = _netns_list() if shutil.which("ip") else set()
    result: dict[str, Any] = {"lab_dir": str(paths.root)}
    for cluster in CLUSTERS.values():
        cpaths = paths.colour(cluster.colour)
        answering = cpaths.socket.exists() and docker_ping(cpaths.socket, timeout=1.0)
        result[cluster.colour] = {
            "status": "up" if answering else "down",
            "netns": cluster.netns if cluster.netns in netns else None,
            "pid": _dockerd_pid(cpaths),
            "manager_address": cluster.address,
            "docker_host": cluster.docker_host,
        }
    healthy = _state_healthy(paths, port, timeout=1.0)
    result["state"] = {"status": "up" if healthy else "down", "pid": _state_pid(paths), "url": state_url(port)}
    result["haproxy"] = front.status(paths.root)
    result["up"] = all(result[name]["status"] == "up" for name in (*COLOURS, "state", "haproxy"))
    return result


def down() -> None:
    """Stop and remove everything the lab created; idempotent, never fails when already down."""
    _require_root()
    paths = LabPaths(lab_dir())
    front.stop(paths.root)
    pid = _state_pid(paths)
    if pid:
        _stop_pids([pid], 5)
    # Containers first, at once: their PID 1 often ignores SIGTERM and dockerd would wait for
    # each; everything is deleted anyway.
    containers = set().union(*(_cgroup_pids(f"/{c.netns}") for c in CLUSTERS.values()))
    _stop_pids(containers, 0)
    daemons = [p for c in CLUSTERS.values() if (p := _dockerd_pid(paths.colour(c.colour)))]
    _stop_pids(daemons, STOP_TIMEOUT)  # dockerd stops its containers itself on SIGTERM
    for _ in range(3):  # containerd, shims and containers it could not stop; they may respawn once
        leftovers = _leftover_pids(paths)
        if not leftovers:
            break
        _stop_pids(leftovers, 3)
    if paths.root.exists():
        _unmount_all(paths.root)
    for cluster in CLUSTERS.values():
        if shutil.which("ip"):
            if cluster.netns in _netns_list():
                run(["ip", "netns", "delete", cluster.netns], check=False)
            if Path("/sys/class/net", cluster.host_if).exists():
                run(["ip", "link", "delete", cluster.host_if], check=False)
        shutil.rmtree(Path("/etc/netns", cluster.netns), ignore_errors=True)
        with contextlib.suppress(OSError):
            Path("/etc/netns").rmdir()  # only if empty: other namespaces may use it
        for directory in _cgroup_dirs(f"/{cluster.netns}"):  # deepest first; empty by now
            with contextlib.suppress(OSError):
                directory.rmdir()
    if (paths.root / MARKER).exists():
        shutil.rmtree(paths.root, ignore_errors=True)
        if paths.root.exists():  # something is still mounted or busy: say what is left
            left = _mounts_under(paths.root)
            raise DeployerError(f"could not remove {paths.root}" + (f": still mounted: {left[0]}" if left else ""))
