"""Build a generated service's image on the lab's daemons, offline, from its own Dockerfile.

The lab has no registry and no ``python`` base image, and its daemons cannot reach PyPI. So:

* :func:`ensure_base_image` makes ``auto-lab/python:3.11`` from the host's own CPython (the interpreter,
  ``libpython``, the standard library without tests/IDLE/tkinter/ensurepip, pip), the shared libraries
  that interpreter, its ``lib-dynload`` modules and ``useradd`` need (resolved with ``ldd`` now, never a
  fixed list), a static busybox for ``/bin/sh`` and the coreutils, CA certificates, the account files and
  shadow's real ``useradd`` (for the Dockerfile's ``useradd --system …`` line), and a wheelhouse in
  ``/wheels`` (setuptools, wheel and the service's dependencies, fetched on the host, where PyPI is
  reachable) with ``PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels`` so ``pip install .`` works offline. The
  root filesystem is ``docker import``-ed into both lab daemons; a label keyed on the interpreter and
  this module's revision, and one listing the wheelhouse's requirements, make a second call a no-op.
* :func:`build_service_image` runs ``docker build --build-arg BASE_IMAGE=auto-lab/python:3.11 -t TAG DIR``
  on both daemons, over the lab's mutual TLS.

Commands are data: the ``*_argv`` functions build them, :func:`run` is the one place that executes them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deployer import commands
from deployer.commands import docker_tls_env
from deployer.errors import ConfigError, DeployerError
from deployer.lab import lab as lab_module

BASE_IMAGE = "auto-lab/python:3.11"
BASE_REVISION = "2"  # bump when the root filesystem or the import changes below change
KEY_LABEL = "org.auto-lab.base-key"
REQUIREMENTS_LABEL = "org.auto-lab.base-requirements"
BASE_REQUIREMENTS = ("setuptools>=68", "wheel")
PREFIX = "usr/local"
WHEELS = "wheels"
PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
# Top-level parts of the standard library a service image never needs.
STDLIB_SKIP = frozenset({"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "__pycache__"})
DYNLOAD_SKIP = ("_tkinter", "_test", "xxlimited", "_xxtestfuzz", "_ctypes_test")
USERADD = "/usr/sbin/useradd"
HOST_FILES = ("/etc/login.defs", "/etc/default/useradd")  # copied when the host has them
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BUILD_TIMEOUT = 900.0
IMPORT_TIMEOUT = 600.0

ACCOUNT_FILES: dict[str, tuple[str, int]] = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        0o644,
    ),
    "etc/group": ("root:x:0:\nshadow:x:42:\nnogroup:x:65534:\n", 0o644),
    "etc/shadow": ("root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o640),
    "etc/gshadow": ("root:*::\nshadow:*::\nnogroup:*::\n", 0o640),
    "etc/nsswitch.conf": ("passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n", 0o644),
    "etc/ld.so.conf": ("/usr/local/lib\n", 0o644),
}
PIP_SCRIPT = "#!/usr/local/bin/python3\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n"


# --- pure parts ------------------------------------------------------------------------------------


def parse_ldd(text: str) -> list[str]:
    """The absolute library paths in ``ldd`` output (the vDSO skipped); ConfigError naming what is missing.

    ``ldd`` prints ``name => /path (0x…)``, ``/lib64/ld-linux-x86-64.so.2 (0x…)`` for the loader,
    ``linux-vdso.so.1 (0x…)`` for the vDSO, ``name => not found`` for a missing library, and a
    ``FILE:`` header line per file when given several.
    """
    found: list[str] = []
    missing: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.endswith(":") or line in ("statically linked", "not a dynamic executable"):
            continue
        if "=>" in line:
            name, _, rest = line.partition("=>")
            target = rest.strip()
            if target.startswith("not found"):
                missing.append(name.strip())
                continue
            path = target.split(" (")[0].strip()
        else:
            path = line.split(" (")[0].strip()
        if path.startswith("/") and path not in found:
            found.append(path)
    if missing:
        raise ConfigError("ldd cannot resolve " + ", ".join(sorted(set(missing))) + ": install them on the host")
    return found


def ldd_argv(paths: Iterable[str | Path]) -> list[str]:
    """List the shared libraries of ELF files."""
    return ["ldd", *map(str, paths)]


def ldconfig_argv(root: str | Path) -> list[str]:
    """Write ``ROOT/etc/ld.so.cache`` (and the soname links) for a root filesystem."""
    return ["ldconfig", "-r", str(root)]


def pip_download_argv(python: str, dest: str | Path, requirements: Sequence[str]) -> list[str]:
    """Fetch binary wheels for ``requirements`` and their dependencies, for this interpreter."""
    return [
        python, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
        "--only-binary=:all:", "--dest", str(dest), *requirements,
    ]  # fmt: skip


def base_changes(key: str, requirements: Sequence[str], python_version: str) -> list[str]:
    """Dockerfile instructions applied when the base root filesystem is imported."""
    return [
        f"ENV PATH={PATH}",
        "ENV LANG=C.UTF-8",
        f"ENV PYTHON_VERSION={python_version}",
        "ENV PIP_NO_INDEX=1",
        f"ENV PIP_FIND_LINKS=/{WHEELS}",
        f"LABEL {KEY_LABEL}={key}",
        f"LABEL {REQUIREMENTS_LABEL}={json.dumps(json.dumps(sorted(set(requirements))))}",
        'CMD ["python3"]',
    ]


def import_argv(docker: str, tar: str | Path, ref: str, changes: Sequence[str]) -> list[str]:
    """``docker image import`` a root filesystem tar with ``changes``."""
    argv = [docker, "image", "import"]
    for change in changes:
        argv += ["--change", change]
    return [*argv, str(tar), ref]


def labels_argv(docker: str, ref: str) -> list[str]:
    """An image's labels as JSON (``null`` when it has none); fails when the image is missing."""
    return [docker, "image", "inspect", "--format", "{{json .Config.Labels}}", ref]


def build_argv(docker: str, project_dir: str | Path, tag: str, base_image: str = BASE_IMAGE) -> list[str]:
    """Build a project's own Dockerfile on the lab's base image."""
    return [docker, "build", "--build-arg", f"BASE_IMAGE={base_image}", "-t", tag, str(project_dir)]


def docker_env(colour: str, cert_path: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the docker CLI against one lab colour: the lab's TLS, the classic builder.

    BuildKit is off: the 28.x client has no buildx plugin here, and the classic builder uses the
    daemon's local images for ``FROM`` without asking a registry.
    """
    base = os.environ if environ is None else environ
    env = {k: v for k, v in base.items() if not k.startswith("DOCKER_")}
    cluster = lab_module.CLUSTERS[colour]
    env.update(docker_tls_env(cluster.address, lab_module.DOCKER_PORT, cert_path))
    env["DOCKER_BUILDKIT"] = "0"
    return env


def docker_cli(environ: Mapping[str, str] | None = None) -> str:
    """The docker client the deployer uses too (``AUTO_DOCKER_CLI``, else ``docker`` on PATH)."""
    return commands.docker_cli(os.environ if environ is None else environ)


def project_requirements(project_dir: str | Path) -> list[str]:
    """What ``pip install .`` needs: ``[build-system] requires`` and ``[project] dependencies``."""
    path = Path(project_dir) / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    requires = data.get("build-system", {}).get("requires", [])
    dependencies = data.get("project", {}).get("dependencies", [])
    return sorted({*requires, *dependencies})


def base_key(python_identity: Mapping[str, Any]) -> str:
    """The cache key of the base image's interpreter part: this module's revision and the interpreter."""
    blob = json.dumps({"revision": BASE_REVISION, **python_identity}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def is_current(labels: Mapping[str, str] | None, key: str, requirements: Iterable[str]) -> bool:
    """Whether an image with ``labels`` is the base for ``key`` and its wheelhouse covers ``requirements``."""
    if not labels or labels.get(KEY_LABEL) != key:
        return False
    try:
        have = set(json.loads(labels.get(REQUIREMENTS_LABEL, "[]")))
    except ValueError:
        return False
    return set(requirements) <= have


def merged_usr(path: str) -> str:
    """Where a host path lives in the image, whose /bin, /sbin, /lib and /lib64 link into /usr."""
    parts = path.strip("/").split("/")
    if parts[0] in ("bin", "sbin", "lib", "lib64"):
        parts.insert(0, "usr")
    return "/".join(parts)


def busybox_links(listing: str) -> list[str]:
    """``busybox --list-full`` output as image paths of the applet links (merged /usr)."""
    return sorted({merged_usr(line.strip()) for line in listing.splitlines() if line.strip()})


# --- the runner ------------------------------------------------------------------------------------


def run(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The lab's runner with a build's view of failure: the last 15 lines of output, not one."""
    return lab_module.run(argv, env=env, timeout=timeout, check=check, detail_lines=15)


def each(colours: Sequence[str], action: Callable[[str], Any]) -> None:
    """Run ``action(colour)`` for every colour at once (each daemon works on its own); re-raise the first error."""
    with ThreadPoolExecutor(max_workers=max(1, len(colours))) as pool:
        futures = [pool.submit(action, colour) for colour in colours]
        for colour, future in zip(colours, futures, strict=True):
            try:
                future.result()
            except DeployerError as exc:
                raise type(exc)(f"{colour}: {exc}") from exc


# --- the base image's root filesystem --------------------------------------------------------------


def python_identity() -> dict[str, Any]:
    """What identifies the host interpreter the base image is made of."""
    prefix = Path(sys.base_prefix)
    binary = prefix / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    stat = binary.stat()
    return {"version": sys.version, "prefix": str(prefix), "binary": [stat.st_size, int(stat.st_mtime)]}


def _stdlib_files(stdlib: Path) -> Iterable[Path]:
    for path in sorted(stdlib.rglob("*")):
        rel = path.relative_to(stdlib).parts
        if rel[0] in STDLIB_SKIP or any(p in ("test", "tests", "idle_test") for p in rel[:-1]):
            continue
        if path.is_dir() and not path.is_symlink():
            continue
        name = path.name
        if name.endswith((".opt-1.pyc", ".opt-2.pyc", ".a")) or name.startswith(DYNLOAD_SKIP):
            continue
        yield path


def _copy(src: Path | str, dest: Path, mode: int | None = None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest, follow_symlinks=True)
    dest.chmod(mode if mode is not None else (os.stat(src).st_mode & 0o7777))


def _link(target: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists() and not dest.is_symlink():
        dest.symlink_to(target)


def _add_library(root: Path, host_path: str, prefix_lib: Path) -> None:
    """Copy one resolved library; libraries of the interpreter's prefix go to /usr/local/lib."""
    real = os.path.realpath(host_path)
    if Path(real).is_relative_to(prefix_lib):
        image_dir = f"{PREFIX}/lib"
    else:
        image_dir = merged_usr(os.path.realpath(os.path.dirname(host_path)))
    dest = root / image_dir / os.path.basename(real)
    if not dest.exists():
        _copy(real, dest)
    name = os.path.basename(host_path)
    if name != os.path.basename(real):  # e.g. libbz2.so.1.0 -> libbz2.so.1.0.4
        _link(os.path.basename(real), root / image_dir / name)


def _write(root: Path, rel: str, text: str, mode: int) -> None:
    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    dest.chmod(mode)


def wheel_extensions(wheels: Iterable[Path], dest: Path) -> list[Path]:
    """Extract the compiled modules and bundled libraries of ``wheels`` under ``dest``, for ``ldd``."""
    found = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if is_shared_object(member):
                    found.append(Path(archive.extract(member, dest / wheel.name)))
    return found


def is_shared_object(name: str) -> bool:
    """``x.so`` or ``libx.so.1.2``, by file name."""
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".so") or ".so." in base


def stage_rootfs(root: Path, wheels: Iterable[Path], scratch: Path) -> None:
    """Lay out the base image's root filesystem under ``root``."""
    prefix = Path(sys.base_prefix)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    prefix_lib = prefix / "lib"
    stdlib = Path(sysconfig.get_paths(vars={"installed_base": str(prefix), "base": str(prefix)})["stdlib"])
    for name in ("bin", "sbin", "lib", "lib64"):
        (root / "usr" / name).mkdir(parents=True, exist_ok=True)
        _link(f"usr/{name}", root / name)
    for name, mode in (("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700), ("proc", 0o755), ("sys", 0o755)):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name).chmod(mode)
    for name in ("dev", "etc/default", "etc/skel", "var/log", "var/mail", "home", f"{PREFIX}/sbin", WHEELS):
        (root / name).mkdir(parents=True, exist_ok=True)

    # The interpreter, libpython, the standard library and pip.
    binary = prefix / "bin" / f"python{version}"
    _copy(binary, root / PREFIX / "bin" / f"python{version}")
    for alias in ("python3", "python"):
        _link(f"python{version}", root / PREFIX / "bin" / alias)
    for alias in ("pip", "pip3", f"pip{version}"):
        _write(root, f"{PREFIX}/bin/{alias}", PIP_SCRIPT, 0o755)
    image_stdlib = root / PREFIX / "lib" / f"python{version}"
    for path in _stdlib_files(stdlib):
        dest = image_stdlib / path.relative_to(stdlib)
        if path.is_symlink():
            _link(os.readlink(path), dest)
        else:
            _copy(path, dest)
    site = stdlib / "site-packages"
    for pip_dir in [site / "pip", *sorted(site.glob("pip-*.dist-info"))]:
        for path in sorted(pip_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                _copy(path, image_stdlib / "site-packages" / path.relative_to(site))

    # Shared libraries, resolved now by the host's loader.
    dynload = sorted(p for p in (stdlib / "lib-dynload").glob("*.so") if not p.name.startswith(DYNLOAD_SKIP))
    # The wheels' compiled modules need system libraries too (manylinux wheels: libgcc_s, libstdc++ …);
    # what a wheel bundles itself (auditwheel's ``*.libs``) resolves inside ``scratch`` and is skipped.
    wheels = list(wheels)
    elves = [binary, *dynload, Path(USERADD), *wheel_extensions(wheels, scratch)]
    for lib in parse_ldd(run(ldd_argv(elves)).stdout):
        if not Path(lib).is_relative_to(scratch):
            _add_library(root, lib, prefix_lib)
    for extra in prefix_lib.glob(f"libpython{version[0]}*.so*"):  # the .so links pip's build tools look for
        if extra.is_symlink():
            _link(os.readlink(extra), root / PREFIX / "lib" / extra.name)
        elif not (root / PREFIX / "lib" / extra.name).exists():
            _copy(extra, root / PREFIX / "lib" / extra.name)

    # busybox for /bin/sh and the coreutils, shadow's useradd, account files, CA certificates.
    busybox = lab_module.find_busybox()
    _copy(busybox, root / "usr/bin/busybox", 0o755)
    for applet in busybox_links(run([busybox, "--list-full"]).stdout):
        if applet != "usr/bin/busybox":
            _link("/usr/bin/busybox", root / applet)
    _copy(USERADD, root / "usr/sbin/useradd", 0o755)
    for rel, (text, mode) in ACCOUNT_FILES.items():
        _write(root, rel, text, mode)
    for host_file in HOST_FILES:
        if os.path.exists(host_file):
            _copy(host_file, root / host_file.lstrip("/"), 0o644)
    if os.path.exists(CA_BUNDLE):
        _copy(CA_BUNDLE, root / CA_BUNDLE.lstrip("/"), 0o644)
        _link("/etc/ssl/certs/ca-certificates.crt", root / "usr/lib/ssl/cert.pem")
        _link("/etc/ssl/certs", root / "usr/lib/ssl/certs")
    for wheel in wheels:
        _copy(wheel, root / WHEELS / wheel.name, 0o644)
    run(ldconfig_argv(root))


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    if info.name in ("etc/shadow", "etc/gshadow"):
        info.gid, info.gname = 42, "shadow"
    return info


def write_tar(root: Path, dest: Path) -> None:
    """Tar ``root`` (owned by root, mtime 0, sorted) to ``dest``."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False, filter=_normalise)


# --- talking to the lab ----------------------------------------------------------------------------


def _cert_path(cert_path: str | None) -> str:
    path = cert_path or os.environ.get("AUTO_DOCKER_CERT_PATH") or str(lab_module.client_cert_dir())
    if not Path(path, "cert.pem").is_file():
        raise ConfigError(f"no lab client certificate in {path}: run `auto-deploy lab up`")
    return path


def image_labels(docker: str, ref: str, env: Mapping[str, str]) -> dict[str, str] | None:
    """An image's labels on one daemon, or None when the image is not there."""
    proc = run(labels_argv(docker, ref), env=env, check=False)
    if proc.returncode != 0:
        if "No such image" in proc.stderr or "No such object" in proc.stderr:
            return None
        raise DeployerError(f"inspecting {ref} failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout or "null") or {}


def ensure_base_image(
    requirements: Iterable[str] = (),
    *,
    colours: Sequence[str] = lab_module.COLOURS,
    cert_path: str | None = None,
    docker: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Make sure every lab colour has ``auto-lab/python:3.11`` with a wheelhouse covering ``requirements``.

    Returns ``{"image", "key", "requirements", "imported": [colours], "seconds", "size_bytes"}``.
    """
    started = time.monotonic()
    docker = docker or docker_cli()
    cert = _cert_path(cert_path)
    key = base_key(python_identity())
    wanted = {*BASE_REQUIREMENTS, *requirements}
    envs = {colour: docker_env(colour, cert) for colour in colours}
    stale: list[str] = []
    for colour, env in envs.items():
        labels = image_labels(docker, BASE_IMAGE, env)
        if force or not is_current(labels, key, wanted):
            stale.append(colour)
            if labels and labels.get(KEY_LABEL) == key:  # keep what the old wheelhouse had
                wanted |= set(json.loads(labels.get(REQUIREMENTS_LABEL, "[]")))
    result: dict[str, Any] = {"image": BASE_IMAGE, "key": key, "requirements": sorted(wanted), "imported": stale}
    if stale:
        with tempfile.TemporaryDirectory(prefix="auto-lab-base-") as tmp:
            wheels = Path(tmp, "wheels")
            run(pip_download_argv(sys.executable, wheels, sorted(wanted)), timeout=600)
            root = Path(tmp, "root")
            stage_rootfs(root, sorted(wheels.glob("*.whl")), Path(tmp, "extensions"))
            tar = Path(tmp, "rootfs.tar")
            write_tar(root, tar)
            result["tar_bytes"] = tar.stat().st_size
            version = ".".join(map(str, sys.version_info[:3]))
            changes = base_changes(key, sorted(wanted), version)
            argv = import_argv(docker, tar, BASE_IMAGE, changes)
            each(stale, lambda colour: run(argv, env=envs[colour], timeout=IMPORT_TIMEOUT))
    size = run([docker, "image", "inspect", "--format", "{{.Size}}", BASE_IMAGE], env=envs[colours[0]]).stdout
    result.update(size_bytes=int(size.strip()), seconds=round(time.monotonic() - started, 2))
    return result


def build_service_image(
    project_dir: str | Path,
    tag: str,
    *,
    colours: Sequence[str] = lab_module.COLOURS,
    cert_path: str | None = None,
    docker: str | None = None,
    ensure_base: bool = True,
    requirements: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Build ``project_dir``'s Dockerfile as ``tag`` on the lab colours, on ``auto-lab/python:3.11``.

    The base image is made (or checked) first with the project's own requirements unless ``ensure_base``
    is false. Returns ``{"tag", "base", "seconds", "build_seconds", "colours"}``.
    """
    started = time.monotonic()
    project = Path(project_dir).resolve()
    if not (project / "Dockerfile").is_file():
        raise ConfigError(f"no Dockerfile in {project}")
    docker = docker or docker_cli()
    cert = _cert_path(cert_path)
    base = None
    if ensure_base:
        reqs = project_requirements(project) if requirements is None else list(requirements)
        base = ensure_base_image(reqs, colours=colours, cert_path=cert, docker=docker)
    built = time.monotonic()
    argv = build_argv(docker, project, tag)
    each(colours, lambda colour: run(argv, env=docker_env(colour, cert), timeout=BUILD_TIMEOUT))
    return {
        "tag": tag,
        "base": base,
        "colours": list(colours),
        "build_seconds": round(time.monotonic() - built, 2),
        "seconds": round(time.monotonic() - started, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deployer.lab.service_image [--base-only] [PROJECT_DIR TAG]``."""
    parser = argparse.ArgumentParser(prog="python -m deployer.lab.service_image", description=__doc__.split("\n")[0])
    parser.add_argument("project_dir", nargs="?", help="a directory with a Dockerfile and pyproject.toml")
    parser.add_argument("tag", nargs="?", help="the image tag to build, e.g. auto-lab/orders:1")
    parser.add_argument("--colour", action="append", choices=lab_module.COLOURS, help="only this colour (repeat)")
    parser.add_argument("--force-base", action="store_true", help="re-import the base image even if current")
    args = parser.parse_args(argv)
    colours = tuple(args.colour or lab_module.COLOURS)
    try:
        if args.project_dir is None:
            result = ensure_base_image(colours=colours, force=args.force_base)
        elif args.tag is None:
            parser.error("TAG is required with PROJECT_DIR")
        else:
            if args.force_base:
                reqs = project_requirements(args.project_dir)
                ensure_base_image(reqs, colours=colours, force=True)
            result = build_service_image(args.project_dir, args.tag, colours=colours)
    except DeployerError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
