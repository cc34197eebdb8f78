"""The root filesystem of the lab's Python base image, made from the host's own CPython.

The interpreter, ``libpython``, the standard library without tests/IDLE/tkinter/ensurepip, pip, the shared
libraries that interpreter, its ``lib-dynload`` modules, the wheels' compiled modules and ``useradd`` need
(resolved with ``ldd`` now, never a fixed list), a static busybox for ``/bin/sh`` and the coreutils, CA
certificates, the account files, shadow's real ``useradd`` and a wheelhouse in ``/wheels``; laid out under
a directory (merged ``/usr``) and written as a deterministic tar. :mod:`deployer.lab.service_image` imports
it into the lab's daemons.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError
from deployer.lab.image import find_busybox
from deployer.lab.runner import run_build as run

PREFIX = "usr/local"
WHEELS = "wheels"
# Top-level parts of the standard library a service image never needs.
STDLIB_SKIP = frozenset({"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "__pycache__"})
DYNLOAD_SKIP = ("_tkinter", "_test", "xxlimited", "_xxtestfuzz", "_ctypes_test")
USERADD = "/usr/sbin/useradd"
HOST_FILES = ("/etc/login.defs", "/etc/default/useradd")  # copied when the host has them
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

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


def merged_usr(path: str) -> str:
    """Where a host path lives in the image, whose /bin, /sbin, /lib and /lib64 link into /usr."""
    parts = path.strip("/").split("/")
    if parts[0] in ("bin", "sbin", "lib", "lib64"):
        parts.insert(0, "usr")
    return "/".join(parts)


def busybox_links(listing: str) -> list[str]:
    """``busybox --list-full`` output as image paths of the applet links (merged /usr)."""
    return sorted({merged_usr(line.strip()) for line in listing.splitlines() if line.strip()})


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
    busybox = find_busybox()
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
