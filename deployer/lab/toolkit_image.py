"""Build the toolkit's own image on the lab's daemons, offline, from the repository's Dockerfile.

The release pipeline builds it with ``python -m build --wheel`` and then ``docker build -f Dockerfile --build-arg
BASE_IMAGE=… --build-arg DOCKER_CLI_IMAGE=… .`` from the repository's root. The lab has no registry and no package
index, so it makes what that build takes from them, the way :mod:`deployer.lab.service_image` does for a service:

* the wheel: one given, or built here by ``python -m build --wheel`` from a copy of what the wheel is made of (the
  folders and files ``pyproject.toml`` names; a build in the work tree would rewrite the ``auto_toolkit.egg-info``
  an editable install reads its version from), at the version the running toolkit reports unless told another
  (setuptools-scm's pretend version: the copy has no git history);
* ``BASE_IMAGE``: the lab's ``auto-lab/python:3.11``, its wheelhouse extended with the wheel's own dependencies
  (its ``Requires-Dist``), so the Dockerfile's ``pip install`` works offline;
* ``DOCKER_CLI_IMAGE``: ``auto-lab/docker-cli:VERSION``, a tar holding nothing but the host's static docker client
  at ``/usr/local/bin/docker``, ``docker import``-ed;
* ``docker build`` of a staged context (the Dockerfile, ``.dockerignore``, ``dist/`` with the one wheel) as
  ``auto-lab/toolkit:VERSION`` on both daemons. The image is labelled with a key over the wheel's contents, the
  Dockerfile, the base's interpreter and the docker client: a second call with the same wheel builds nothing.

Commands are data: the ``*_argv`` functions build them; :func:`deployer.lab.service_image.run` (over the lab's
runner) is the one place that executes them.
"""

from __future__ import annotations

import argparse
import email.parser
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autocore.version import toolkit_version
from deployer.errors import ConfigError, DeployerError
from deployer.lab.image import is_static_elf
from deployer.lab.runner import BUILD_DETAIL_LINES
from deployer.lab.service_image import (
    BASE_IMAGE,
    IMPORT_TIMEOUT,
    KEY_LABEL,
    docker_cli,
    docker_env,
    each,
    ensure_base_image,
    image_labels,
    import_argv,
    lab_cert_path,
    report,
    run,
)
from deployer.state.contract import COLOURS

TOOLKIT_REPOSITORY = "auto-lab/toolkit"
DOCKER_CLI_REPOSITORY = "auto-lab/docker-cli"
TOOLKIT_KEY_LABEL = "org.auto-lab.toolkit-key"
DOCKER_CLI_KEY_LABEL = "org.auto-lab.docker-cli-key"
TOOLKIT_REVISION = "1"  # bump when the build below changes in a way the key does not see
DISTRIBUTION = "auto_toolkit"  # the wheel's file-name prefix
CONTEXT_FILES = ("Dockerfile", ".dockerignore")
DOCKER_CLI_PATH = "usr/local/bin/docker"  # where DOCKER_CLI_IMAGE holds the client, as in docker:28-cli
PRETEND_VERSION = "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_AUTO_TOOLKIT"
WHEEL_TIMEOUT = 600.0
BUILD_TIMEOUT = 900.0
# What a tag may hold (docker's reference grammar): a version's "+" becomes "-".
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_EXTRA_MARKER = re.compile(r"\bextra\s*==")


# --- pure parts ------------------------------------------------------------------------------------


def wheel_build_argv(python: str, source: str | Path, outdir: str | Path) -> list[str]:
    """``python -m build --wheel`` of ``source`` into ``outdir`` (build isolation: the backend from the index)."""
    return [python, "-m", "build", "--wheel", "--outdir", str(outdir), str(source)]


def toolkit_build_argv(
    docker: str, context: str | Path, tag: str, *, base_image: str, cli_image: str, labels: Mapping[str, str]
) -> list[str]:
    """The release pipeline's ``docker build`` of the Dockerfile, on the lab's images, with ``labels``."""
    argv = [docker, "build", "--force-rm", "-f", str(Path(context, "Dockerfile"))]
    argv += ["--build-arg", f"BASE_IMAGE={base_image}", "--build-arg", f"DOCKER_CLI_IMAGE={cli_image}"]
    for name, value in sorted(labels.items()):
        argv += ["--label", f"{name}={value}"]
    return [*argv, "-t", tag, str(context)]


def client_version_argv(docker: str) -> list[str]:
    """The docker client's own version line (``Docker version 28.2.2, build e6534b4``); asks no daemon."""
    return [docker, "--version"]


def size_argv(docker: str, ref: str) -> list[str]:
    """An image's size in bytes (all its layers)."""
    return [docker, "image", "inspect", "--format", "{{.Size}}", ref]


def parse_client_version(text: str) -> str:
    """``28.2.2`` from ``docker --version``; ConfigError when the output is not a docker client's."""
    match = re.search(r"version ([0-9][^\s,]*)", text)
    if not match:
        raise ConfigError(f"not a docker client's version: {text.strip()[:80]!r}")
    return match.group(1)


def image_tag(version: str) -> str:
    """A version as a docker tag: ``0.1.dev3+gabc`` -> ``0.1.dev3-gabc`` (a release's ``1.2.0`` stays)."""
    tag = _TAG_UNSAFE.sub("-", version)[:128]
    if not tag or not tag[0].isalnum():
        raise ConfigError(f"{version!r} cannot be an image tag")
    return tag


def wheel_version(wheel: str | Path) -> str:
    """The version in a wheel's file name (``auto_toolkit-1.2.0-py3-none-any.whl`` -> ``1.2.0``)."""
    parts = Path(wheel).name.split("-")
    if len(parts) < 5 or not Path(wheel).name.endswith(".whl"):
        raise ConfigError(f"{Path(wheel).name} is not a wheel's file name")
    return parts[1]


def wheel_metadata(wheel: str | Path) -> email.message.Message:
    """A wheel's ``*.dist-info/METADATA``; ConfigError when it is not a readable wheel."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise ConfigError(f"{wheel}: not one *.dist-info/METADATA in the wheel")
            text = archive.read(names[0]).decode()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"cannot read the wheel {wheel}: {exc}") from exc
    return email.parser.Parser().parsestr(text, headersonly=True)


def wheel_requirements(wheel: str | Path) -> list[str]:
    """What installing the wheel needs: its ``Requires-Dist``, without an extra's (``; extra == "test"``)."""
    found = []
    for requirement in wheel_metadata(wheel).get_all("Requires-Dist") or []:
        _, _, marker = requirement.partition(";")
        if not _EXTRA_MARKER.search(marker):
            found.append(requirement.strip())
    return sorted(set(found))


def wheel_digest(wheel: str | Path) -> str:
    """The wheel's contents (member names and bytes, not the zip's timestamps): the same source at the same
    version gives the same digest whenever it is built."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode() + b"\0" + hashlib.sha256(archive.read(name)).digest())
    return digest.hexdigest()


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def toolkit_key(parts: Mapping[str, str]) -> str:
    """The toolkit image's cache key: this module's revision and everything the image is made of."""
    blob = json.dumps({"revision": TOOLKIT_REVISION, **parts}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cli_changes(key: str, version: str) -> list[str]:
    """Dockerfile instructions applied when the docker client's tar is imported."""
    return [
        "ENV PATH=/usr/local/bin:/usr/bin:/bin",
        f"LABEL {DOCKER_CLI_KEY_LABEL}={key}",
        f"LABEL org.opencontainers.image.version={version}",
        f'ENTRYPOINT ["/{DOCKER_CLI_PATH}"]',
    ]


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def write_cli_tar(binary: str | Path, dest: Path) -> None:
    """A root filesystem of one file: ``binary`` as ``/usr/local/bin/docker`` (owned by root, mtime 0)."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("usr", "usr/local", "usr/local/bin"):
            info = _root_owned(tarfile.TarInfo(name))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        info = _root_owned(tar.gettarinfo(str(binary), arcname=DOCKER_CLI_PATH))
        info.mode = 0o755
        with open(binary, "rb") as fh:
            tar.addfile(info, fh)


def wheel_sources(source: str | Path) -> list[str]:
    """What a wheel of the project in ``source`` is built from: ``pyproject.toml``, its readme and license files,
    and the top-level folders of its packages (``[tool.setuptools] packages`` and ``package-dir``)."""
    root = Path(source)
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {root / 'pyproject.toml'}: {exc}") from exc
    settings = project.get("tool", {}).get("setuptools", {})
    package_dir = settings.get("package-dir", {})
    folders = {package_dir.get(p.split(".")[0], p.split(".")[0]) for p in settings.get("packages", [])}
    files = {"pyproject.toml"}
    readme = project.get("project", {}).get("readme")
    if isinstance(readme, str):
        files.add(readme)
    elif isinstance(readme, dict) and "file" in readme:
        files.add(readme["file"])
    files.update(p.name for p in root.glob("LICEN[CS]E*"))
    if not folders:
        raise ConfigError(f"{root / 'pyproject.toml'} names no [tool.setuptools] packages")
    return sorted(files | {f.rstrip("/") for f in folders})


def stage_context(source: str | Path, wheel: str | Path, dest: Path) -> Path:
    """The build context the release pipeline has at the repository's root, with nothing else: the Dockerfile,
    ``.dockerignore`` and ``dist/`` holding the one wheel."""
    (dest / "dist").mkdir(parents=True, exist_ok=True)
    for name in CONTEXT_FILES:
        path = Path(source, name)
        if not path.is_file():
            raise ConfigError(f"no {name} in {Path(source).resolve()}")
        shutil.copyfile(path, dest / name)
    shutil.copyfile(wheel, dest / "dist" / Path(wheel).name)
    return dest


# --- effectful parts -------------------------------------------------------------------------------


def default_source() -> Path:
    """The checkout this module runs from (the Dockerfile is in the repository, not in the wheel)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "Dockerfile").is_file() or not (root / "pyproject.toml").is_file():
        raise ConfigError(f"{root} is not a checkout of the toolkit (no Dockerfile): run from the repository")
    return root


def build_wheel(source: str | Path, outdir: str | Path, *, version: str | None = None) -> Path:
    """``python -m build --wheel`` of a copy of ``source`` (see :func:`wheel_sources`) at ``version`` (default:
    the running toolkit's); the wheel's path in ``outdir``."""
    if importlib.util.find_spec("build") is None:
        raise ConfigError("the `build` package is not installed: pip install build (or -e '.[test]')")
    version = version or toolkit_version()
    outdir = Path(outdir)
    with tempfile.TemporaryDirectory(prefix="auto-lab-wheel-") as tmp:
        copy = Path(tmp, "src")
        copy.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info", "build", "dist")
        for name in wheel_sources(source):
            path = Path(source, name)
            if path.is_dir():
                shutil.copytree(path, copy / name, ignore=ignore)
            elif path.is_file():
                shutil.copyfile(path, copy / name)
            else:
                raise ConfigError(f"{path}: named by pyproject.toml, but missing")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SETUPTOOLS_SCM_PRETEND_VERSION")}
        env[PRETEND_VERSION] = version
        run(wheel_build_argv(sys.executable, copy, outdir), env=env, timeout=WHEEL_TIMEOUT)
    wheels = sorted(outdir.glob(f"{DISTRIBUTION}-*.whl"))
    if len(wheels) != 1:
        raise DeployerError(f"python -m build left {len(wheels)} {DISTRIBUTION} wheels in {outdir}, not one")
    return wheels[0]


def client_binary(docker: str) -> Path:
    """The docker client the image gets: ``docker`` resolved on PATH; it must be static (the image has no libc
    for it)."""
    found = shutil.which(docker)
    if not found:
        raise ConfigError(f"{docker} not found: install a docker client (the lab uses /usr/local/bin/docker)")
    path = Path(found).resolve()
    if not is_static_elf(str(path)):
        raise ConfigError(f"{path} is not a statically linked docker client: set AUTO_DOCKER_CLI to one that is")
    return path


def ensure_cli_image(
    binary: str | Path, *, colours: Sequence[str], envs: Mapping[str, Mapping[str, str]], docker: str
) -> dict[str, Any]:
    """Make sure every colour has ``auto-lab/docker-cli:VERSION`` holding ``binary``.

    Returns ``{"image", "key", "imported": [colours]}``.
    """
    key = file_digest(binary)[:16]
    version = parse_client_version(run(client_version_argv(str(binary))).stdout)
    ref = f"{DOCKER_CLI_REPOSITORY}:{image_tag(version)}"
    stale = [c for c in colours if labels_of(docker, ref, envs[c]).get(DOCKER_CLI_KEY_LABEL) != key]
    if stale:
        with tempfile.TemporaryDirectory(prefix="auto-lab-docker-cli-") as tmp:
            tar = Path(tmp, "docker-cli.tar")
            write_cli_tar(binary, tar)
            argv = import_argv(docker, tar, ref, cli_changes(key, version))
            each(stale, lambda colour: run(argv, env=envs[colour], timeout=IMPORT_TIMEOUT))
    return {"image": ref, "key": key, "imported": stale}


def build_failure(argv: Sequence[str], proc: subprocess.CompletedProcess[str]) -> DeployerError:
    """A failed ``docker build`` in a few lines: the classic builder writes a step's own output (pip's error) to
    stdout, and only its "returned a non-zero code" to stderr."""
    noise = ("DEPRECATED:", "BuildKit is currently disabled", "environment-variable.")
    text = f"{proc.stdout or ''}\n{proc.stderr or ''}"
    lines = [line.rstrip() for line in text.splitlines() if line.strip() and not line.strip().startswith(noise)]
    detail = "\n".join(lines[-BUILD_DETAIL_LINES:]) or f"exit status {proc.returncode}"
    return DeployerError(f"{shlex.join(argv)} failed:\n{detail}")


def docker_build(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """Run one ``docker build``; DeployerError with the end of its log when it fails."""
    proc = run(argv, env=env, timeout=BUILD_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise build_failure(argv, proc)


def labels_of(docker: str, ref: str, env: Mapping[str, str]) -> dict[str, str]:
    """An image's labels on one daemon; none when the image is missing."""
    return image_labels(docker, ref, env) or {}


def image_id(docker: str, ref: str, env: Mapping[str, str]) -> str | None:
    """An image's ID on one daemon, or None when it is not there."""
    proc = run([docker, "image", "inspect", "--format", "{{.Id}}", ref], env=env, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def build_toolkit_image(
    wheel: str | Path | None = None,
    *,
    source: str | Path | None = None,
    version: str | None = None,
    colours: Sequence[str] = COLOURS,
    cert_path: str | None = None,
    docker: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Build the repository's Dockerfile as ``auto-lab/toolkit:VERSION`` on the lab colours, offline.

    ``wheel``: the toolkit's wheel; without one it is built from ``source`` (default: this checkout) at ``version``
    (default: the running toolkit's). A colour whose image carries the same key is left alone unless ``force``.
    Returns ``{"tag", "version", "wheel", "wheel_bytes", "key", "built": [colours], "base", "docker_cli",
    "size_bytes", "base_size_bytes", "wheel_seconds", "build_seconds", "seconds"}``.
    """
    started = time.monotonic()
    source = Path(source).resolve() if source is not None else default_source()
    docker = docker or docker_cli()
    cert = lab_cert_path(cert_path)
    envs = {colour: docker_env(colour, cert) for colour in colours}
    with tempfile.TemporaryDirectory(prefix="auto-lab-toolkit-") as tmp:
        if wheel is None:
            wheel = build_wheel(source, Path(tmp, "wheel"), version=version)
        wheel = Path(wheel)
        wheel_seconds = round(time.monotonic() - started, 2)
        version = wheel_version(wheel)
        tag = f"{TOOLKIT_REPOSITORY}:{image_tag(version)}"
        base = ensure_base_image(wheel_requirements(wheel), colours=colours, cert_path=cert, docker=docker)
        cli = ensure_cli_image(client_binary(docker), colours=colours, envs=envs, docker=docker)
        base_labels = labels_of(docker, BASE_IMAGE, envs[colours[0]])
        key = toolkit_key(
            {
                "wheel": wheel_digest(wheel),
                **{name: file_digest(source / name) for name in CONTEXT_FILES},
                "base": base_labels.get(KEY_LABEL, ""),
                "docker-cli": cli["key"],
            }
        )
        stale = [c for c in colours if force or labels_of(docker, tag, envs[c]).get(TOOLKIT_KEY_LABEL) != key]
        built = time.monotonic()
        if stale:
            context = stage_context(source, wheel, Path(tmp, "context"))
            labels = {TOOLKIT_KEY_LABEL: key, "org.opencontainers.image.version": version}
            argv = toolkit_build_argv(
                docker, context, tag, base_image=BASE_IMAGE, cli_image=cli["image"], labels=labels
            )

            def build(colour: str) -> None:
                old = image_id(docker, tag, envs[colour])
                docker_build(argv, envs[colour])
                if old and old != image_id(docker, tag, envs[colour]):  # the replaced build, now untagged
                    run([docker, "image", "rm", old], env=envs[colour], check=False)

            each(stale, build)
        build_seconds = round(time.monotonic() - built, 2)
        wheel_bytes = wheel.stat().st_size
        wheel_name = wheel.name
    env = envs[colours[0]]
    return {
        "tag": tag,
        "version": version,
        "wheel": wheel_name,
        "wheel_bytes": wheel_bytes,
        "key": key,
        "built": stale,
        "base": base,
        "docker_cli": cli,
        "size_bytes": int(run(size_argv(docker, tag), env=env).stdout.strip()),
        "base_size_bytes": int(run(size_argv(docker, BASE_IMAGE), env=env).stdout.strip()),
        "wheel_seconds": wheel_seconds,
        "build_seconds": build_seconds,
        "seconds": round(time.monotonic() - started, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deployer.lab.toolkit_image [--wheel WHEEL] [--version V] [--colour C] [--force]``."""
    parser = argparse.ArgumentParser(prog="python -m deployer.lab.toolkit_image", description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", help="the toolkit's wheel (default: build one from this checkout)")
    parser.add_argument("--version", help="the version of the wheel built here (default: the running toolkit's)")
    parser.add_argument("--colour", action="append", choices=COLOURS, help="only this colour (repeat)")
    parser.add_argument("--force", action="store_true", help="build even when the image is current")
    args = parser.parse_args(argv)
    if args.wheel and args.version:
        parser.error("--version applies to the wheel built here, not to a given --wheel")
    colours = tuple(args.colour or COLOURS)
    return report(lambda: build_toolkit_image(args.wheel, version=args.version, colours=colours, force=args.force))


if __name__ == "__main__":
    raise SystemExit(main())
