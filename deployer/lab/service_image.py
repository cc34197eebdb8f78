"""Build a generated service's image on the lab's daemons, offline, from its own Dockerfile.

The lab has no registry and no ``python`` base image, and its daemons cannot reach PyPI. So:

* :func:`ensure_base_image` makes ``auto-lab/python:3.11`` from the host's own CPython (laid out by
  :mod:`deployer.lab.base_rootfs`: the interpreter,
  ``libpython``, the standard library without tests/IDLE/tkinter/ensurepip, pip), the shared libraries
  that interpreter, its ``lib-dynload`` modules and ``useradd`` need (resolved with ``ldd`` now, never a
  fixed list), a static busybox for ``/bin/sh`` and the coreutils, CA certificates, the account files and
  shadow's real ``useradd`` (for the Dockerfile's ``useradd --system …`` line), and a wheelhouse in
  ``/wheels`` (setuptools, wheel and the service's dependencies, fetched on the host, where PyPI is
  reachable) with ``PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels`` so ``pip install .`` works offline. The
  root filesystem is ``docker import``-ed into both lab daemons; a label keyed on the interpreter and
  this module's revision, and one listing the wheelhouse's requirements, make a second call a no-op.
* :func:`build_service_image` runs ``docker build --build-arg BASE_IMAGE=auto-lab/python:3.11 -t TAG DIR``
  on both daemons, over the lab's mutual TLS; with ``publish`` (a lab with workers) it then pushes the
  image to the lab's registry (:func:`publish_image`), where the workers pull it from.

Commands are data: the ``*_argv`` functions build them, :func:`run` (over the lab's runner) is the one place
that executes them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deployer import commands
from deployer.commands import docker_tls_env
from deployer.errors import ConfigError, DeployerError
from deployer.lab import runner as lab_runner
from deployer.lab.base_rootfs import WHEELS, python_identity, stage_rootfs, write_tar
from deployer.lab.layout import CLUSTERS, DOCKER_PORT, LabPaths, client_cert_dir, lab_dir
from deployer.lab.registry import RegistryPaths, reference
from deployer.state.contract import COLOURS

BASE_IMAGE = "auto-lab/python:3.11"
BASE_REVISION = "2"  # bump when base_rootfs.stage_rootfs or the import changes below change
KEY_LABEL = "org.auto-lab.base-key"
REQUIREMENTS_LABEL = "org.auto-lab.base-requirements"
BASE_REQUIREMENTS = ("setuptools>=68", "wheel")
PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILD_TIMEOUT = 900.0
IMPORT_TIMEOUT = 600.0


# --- pure parts ------------------------------------------------------------------------------------


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


def publish_argvs(docker: str, tag: str, target: str) -> list[list[str]]:
    """Tag a local image with the registry's reference and push it there."""
    return [[docker, "tag", tag, target], [docker, "push", target]]


def docker_env(colour: str, cert_path: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the docker CLI against one lab colour: the lab's TLS, the classic builder.

    BuildKit is off: the 28.x client has no buildx plugin here, and the classic builder uses the
    daemon's local images for ``FROM`` without asking a registry.
    """
    base = os.environ if environ is None else environ
    env = {k: v for k, v in base.items() if not k.startswith("DOCKER_")}
    cluster = CLUSTERS[colour]
    env.update(docker_tls_env(cluster.address, DOCKER_PORT, cert_path))
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


# --- the runner ------------------------------------------------------------------------------------


run = lab_runner.run_build  # the lab's runner with a build's view of failure: the last 15 lines of output


def each(colours: Sequence[str], action: Callable[[str], Any]) -> None:
    """Run ``action(colour)`` for every colour at once (each daemon works on its own); re-raise the first error."""
    with ThreadPoolExecutor(max_workers=max(1, len(colours))) as pool:
        futures = [pool.submit(action, colour) for colour in colours]
        for colour, future in zip(colours, futures, strict=True):
            try:
                future.result()
            except DeployerError as exc:
                raise type(exc)(f"{colour}: {exc}") from exc


# --- talking to the lab ----------------------------------------------------------------------------


def lab_cert_path(cert_path: str | None) -> str:
    path = cert_path or os.environ.get("AUTO_DOCKER_CERT_PATH") or str(client_cert_dir())
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
    colours: Sequence[str] = COLOURS,
    cert_path: str | None = None,
    docker: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Make sure every lab colour has ``auto-lab/python:3.11`` with a wheelhouse covering ``requirements``.

    Returns ``{"image", "key", "requirements", "imported": [colours], "seconds", "size_bytes"}``.
    """
    started = time.monotonic()
    docker = docker or docker_cli()
    cert = lab_cert_path(cert_path)
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


def publish_image(tag: str, *, colour: str = "blue", cert_path: str | None = None, docker: str | None = None) -> str:
    """Push ``tag`` from ``colour``'s manager to the lab's registry (logged in with the lab's registry login);
    returns the registry's reference, which a stack deployed ``--with-registry-auth`` names."""
    docker = docker or docker_cli()
    env = docker_env(colour, lab_cert_path(cert_path))
    env["DOCKER_CONFIG"] = str(RegistryPaths(LabPaths(lab_dir())).docker_config)
    target = reference(tag)
    for argv in publish_argvs(docker, tag, target):
        run(argv, env=env, timeout=BUILD_TIMEOUT)
    return target


def build_service_image(
    project_dir: str | Path,
    tag: str,
    *,
    colours: Sequence[str] = COLOURS,
    cert_path: str | None = None,
    docker: str | None = None,
    ensure_base: bool = True,
    requirements: Iterable[str] | None = None,
    publish: bool = False,
) -> dict[str, Any]:
    """Build ``project_dir``'s Dockerfile as ``tag`` on the lab colours, on ``auto-lab/python:3.11``.

    The base image is made (or checked) first with the project's own requirements unless ``ensure_base``
    is false; with ``publish`` the image built on the first colour is pushed to the lab's registry.
    Returns ``{"tag", "base", "seconds", "build_seconds", "colours"}`` and ``"registry_ref"`` when published.
    """
    started = time.monotonic()
    project = Path(project_dir).resolve()
    if not (project / "Dockerfile").is_file():
        raise ConfigError(f"no Dockerfile in {project}")
    docker = docker or docker_cli()
    cert = lab_cert_path(cert_path)
    base = None
    if ensure_base:
        reqs = project_requirements(project) if requirements is None else list(requirements)
        base = ensure_base_image(reqs, colours=colours, cert_path=cert, docker=docker)
    built = time.monotonic()
    argv = build_argv(docker, project, tag)
    each(colours, lambda colour: run(argv, env=docker_env(colour, cert), timeout=BUILD_TIMEOUT))
    result = {
        "tag": tag,
        "base": base,
        "colours": list(colours),
        "build_seconds": round(time.monotonic() - built, 2),
    }
    if publish:
        result["registry_ref"] = publish_image(tag, colour=colours[0], cert_path=cert, docker=docker)
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deployer.lab.service_image [--base-only] [PROJECT_DIR TAG]``."""
    parser = argparse.ArgumentParser(prog="python -m deployer.lab.service_image", description=__doc__.split("\n")[0])
    parser.add_argument("project_dir", nargs="?", help="a directory with a Dockerfile and pyproject.toml")
    parser.add_argument("tag", nargs="?", help="the image tag to build, e.g. auto-lab/orders:1")
    parser.add_argument("--colour", action="append", choices=COLOURS, help="only this colour (repeat)")
    parser.add_argument("--force-base", action="store_true", help="re-import the base image even if current")
    parser.add_argument("--publish", action="store_true", help="push the image to the lab's registry (workers)")
    args = parser.parse_args(argv)
    colours = tuple(args.colour or COLOURS)

    def build() -> Any:
        if args.project_dir is None:
            return ensure_base_image(colours=colours, force=args.force_base)
        if args.tag is None:
            parser.error("TAG is required with PROJECT_DIR")
        if args.force_base:
            ensure_base_image(project_requirements(args.project_dir), colours=colours, force=True)
        return build_service_image(args.project_dir, args.tag, colours=colours, publish=args.publish)

    return report(build)


def report(build: Callable[[], Any]) -> int:
    """A lab build run by a module's ``main``: its result as JSON on stdout, or one ``Error:`` line and its code."""
    try:
        result = build()
    except DeployerError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
