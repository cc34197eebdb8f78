"""The lab's app image ``auto-lab/web:1`` and ``:2``: a static busybox root filesystem, imported offline.

The lab has no registry: the image is a deterministic tar made here from the host's static busybox and
``docker import``-ed into each daemon with the Dockerfile instructions of :func:`image_changes`. A label
carries :data:`IMAGE_REVISION`, so ``lab up`` re-imports an older lab's image and leaves a current one.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError, DeployerError
from deployer.lab.runner import last_line

IMAGE_REPOSITORY = "auto-lab/web"
IMAGE_TAGS = ("1", "2")
IMAGE_PORT = 8080
IMAGE_REVISION_LABEL = "org.auto-lab.image-revision"
IMAGE_REVISION = "2"  # bump when image_changes() changes, so `lab up` re-imports
BUSYBOX_CANDIDATES = ("/usr/bin/busybox", "/bin/busybox")
BUSYBOX_APPLETS = ("sh", "httpd", "wget", "echo", "sleep", "cat", "ls", "mkdir", "env", "ps", "kill", "nc")


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


def is_static_elf(path: str) -> bool:
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
        if os.path.exists(candidate) and is_static_elf(candidate):
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


def ensure_images(client: Any, rootfs: list[bytes]) -> list[str]:
    """Import the missing ``auto-lab/web`` tags into one daemon (a ``docker.DockerClient``).

    ``rootfs`` caches the tar between daemons. Returns the references imported.
    """
    import docker  # imported lazily: `lab env` and `lab status` do not need it

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
            raise DeployerError(f"importing {ref} failed: {last_line(str(out))}")
        imported.append(ref)
    return imported
