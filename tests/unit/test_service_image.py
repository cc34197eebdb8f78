"""The lab's service-image builder: its commands as data and its parsing, without Docker."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from deployer.errors import ConfigError
from deployer.lab import base_rootfs as fs
from deployer.lab import service_image as si

LDD = """\
/root/.pyenv/versions/3.11.7/bin/python3.11:
\tlinux-vdso.so.1 (0x00007ffd5a1e4000)
\tlibpython3.11.so.1.0 => /root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0 (0x00007f2b0c400000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2b0c21f000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f2b0cb0a000)
/root/.pyenv/versions/3.11.7/lib/python3.11/lib-dynload/_bz2.cpython-311-x86_64-linux-gnu.so:
\tlinux-vdso.so.1 (0x00007ffc0b5f2000)
\tlibbz2.so.1.0 => /lib/x86_64-linux-gnu/libbz2.so.1.0 (0x00007f8f3a1d0000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8f39fef000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f8f3a1f9000)
/usr/bin/busybox:
\tstatically linked
"""


def test_parse_ldd_lists_each_library_once_in_order() -> None:
    assert fs.parse_ldd(LDD) == [
        "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/libbz2.so.1.0",
    ]


def test_parse_ldd_single_file_and_static() -> None:
    assert fs.parse_ldd("\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x1)\n") == ["/lib/x86_64-linux-gnu/libz.so.1"]
    assert fs.parse_ldd("\tstatically linked\n") == []
    assert fs.parse_ldd("\tnot a dynamic executable\n") == []


def test_parse_ldd_names_what_is_missing() -> None:
    text = "\tlibtk8.6.so => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n"
    text += "\tlibX11.so.6 => not found\n"
    with pytest.raises(ConfigError, match=r"^ldd cannot resolve libX11\.so\.6, libtk8\.6\.so: install them"):
        fs.parse_ldd(text)


def test_argv_builders() -> None:
    assert fs.ldd_argv([Path("/a"), "/b"]) == ["ldd", "/a", "/b"]
    assert fs.ldconfig_argv(Path("/tmp/root")) == ["ldconfig", "-r", "/tmp/root"]
    assert si.build_argv("docker", Path("/p/orders"), "auto-lab/orders:1") == [
        "docker", "build", "--build-arg", "BASE_IMAGE=auto-lab/python:3.11", "-t", "auto-lab/orders:1", "/p/orders",
    ]  # fmt: skip
    assert si.import_argv("/usr/local/bin/docker", "/t/rootfs.tar", "auto-lab/python:3.11", ["ENV A=1", "CMD x"]) == [
        "/usr/local/bin/docker", "image", "import", "--change", "ENV A=1", "--change", "CMD x",
        "/t/rootfs.tar", "auto-lab/python:3.11",
    ]  # fmt: skip
    inspect = ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", "x:1"]
    assert si.labels_argv("docker", "x:1") == inspect
    assert si.pip_download_argv("/py", "/w", ["wheel", "fastapi>=0.110"]) == [
        "/py", "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--only-binary=:all:",
        "--dest", "/w", "wheel", "fastapi>=0.110",
    ]  # fmt: skip
    assert si.publish_argvs("docker", "auto-lab/orders:1", "10.213.1.1:5000/auto-lab/orders:1") == [
        ["docker", "tag", "auto-lab/orders:1", "10.213.1.1:5000/auto-lab/orders:1"],
        ["docker", "push", "10.213.1.1:5000/auto-lab/orders:1"],
    ]


def test_base_changes_make_pip_offline_and_label_the_wheelhouse() -> None:
    changes = si.base_changes("k1", ["wheel", "fastapi>=0.110", "wheel"], "3.11.7")
    assert "ENV PIP_NO_INDEX=1" in changes and "ENV PIP_FIND_LINKS=/wheels" in changes
    assert "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin" in changes
    assert "LABEL org.auto-lab.base-key=k1" in changes
    label = next(c for c in changes if c.startswith(f"LABEL {si.REQUIREMENTS_LABEL}="))
    assert json.loads(json.loads(label.split("=", 1)[1])) == ["fastapi>=0.110", "wheel"]
    assert changes[-1] == 'CMD ["python3"]'


def test_docker_env_points_at_one_colour_with_tls_and_the_classic_builder() -> None:
    env = si.docker_env("green", "/certs", {"PATH": "/bin", "DOCKER_CONTEXT": "x", "DOCKER_HOST": "unix:///y"})
    assert env == {
        "PATH": "/bin",
        "DOCKER_HOST": "tcp://10.213.2.2:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/certs",
        "DOCKER_BUILDKIT": "0",
    }
    assert si.docker_cli({"AUTO_DOCKER_CLI": "/usr/bin/docker"}) == "/usr/bin/docker"
    assert si.docker_cli({}) == "docker"


def test_is_current_needs_the_same_key_and_a_covering_wheelhouse() -> None:
    labels = {si.KEY_LABEL: "k1", si.REQUIREMENTS_LABEL: json.dumps(["fastapi>=0.110", "wheel"])}
    assert si.is_current(labels, "k1", ["wheel"])
    assert si.is_current(labels, "k1", ["fastapi>=0.110", "wheel"])
    assert not si.is_current(labels, "k2", ["wheel"])
    assert not si.is_current(labels, "k1", ["uvicorn>=0.29"])
    assert not si.is_current(None, "k1", [])
    assert not si.is_current({si.KEY_LABEL: "k1", si.REQUIREMENTS_LABEL: "not json"}, "k1", [])


def test_base_key_changes_with_the_interpreter() -> None:
    one = si.base_key({"version": "3.11.7", "binary": [1, 2]})
    assert one == si.base_key({"binary": [1, 2], "version": "3.11.7"})
    assert one != si.base_key({"version": "3.11.8", "binary": [1, 2]})
    assert len(one) == 16


def test_merged_usr_and_busybox_links() -> None:
    assert fs.merged_usr("/lib/x86_64-linux-gnu/libc.so.6") == "usr/lib/x86_64-linux-gnu/libc.so.6"
    assert fs.merged_usr("/lib64/ld-linux-x86-64.so.2") == "usr/lib64/ld-linux-x86-64.so.2"
    assert fs.merged_usr("/usr/lib/x86_64-linux-gnu/libz.so.1") == "usr/lib/x86_64-linux-gnu/libz.so.1"
    assert fs.busybox_links("bin/sh\nsbin/nologin\nusr/bin/wget\n\nbin/sh\n") == [
        "usr/bin/sh",
        "usr/bin/wget",
        "usr/sbin/nologin",
    ]


def test_project_requirements_reads_build_and_runtime_dependencies(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\n'
        '[project]\nname = "x"\ndependencies = ["fastapi>=0.110", "uvicorn>=0.29"]\n'
        '[project.optional-dependencies]\ntest = ["pytest"]\n'
    )
    assert si.project_requirements(tmp_path) == ["fastapi>=0.110", "setuptools>=68", "uvicorn>=0.29"]
    (tmp_path / "pyproject.toml").write_text("not = [toml")
    with pytest.raises(ConfigError, match="cannot read"):
        si.project_requirements(tmp_path)


def test_wheel_extensions_extracts_only_shared_objects(tmp_path: Path) -> None:
    wheel = tmp_path / "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in ("pkg/__init__.py", "pkg/_core.cpython-311-x86_64-linux-gnu.so", "pkg.libs/libfoo-ab12.so.1.2"):
            archive.writestr(name, b"x")
    found = fs.wheel_extensions([wheel], tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out" / wheel.name).as_posix() for p in found) == [
        "pkg.libs/libfoo-ab12.so.1.2",
        "pkg/_core.cpython-311-x86_64-linux-gnu.so",
    ]
    assert fs.is_shared_object("a/b.so") and fs.is_shared_object("libz.so.1") and not fs.is_shared_object("so.py")


def test_write_tar_is_owned_by_root_with_fixed_times(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "shadow").write_text("root:*:1::::::\n")
    (root / "bin").symlink_to("usr/bin")
    si.write_tar(root, tmp_path / "a.tar")
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["bin", "etc", "etc/shadow"]
    assert all(m.uid == 0 and m.mtime == 0 for m in members.values())
    assert members["etc/shadow"].gid == 42 and members["bin"].issym() and members["bin"].linkname == "usr/bin"


def test_a_failed_build_reports_the_end_of_its_log_and_a_short_command_its_last_line() -> None:
    from deployer.errors import DeployerError
    from deployer.lab import runner

    argv = ["sh", "-c", "printf 'step 1\\n\\nstep 2: boom\\n' >&2; exit 3"]
    with pytest.raises(DeployerError) as build:
        si.run(argv)
    assert str(build.value).endswith(" failed:\nstep 1\nstep 2: boom")
    with pytest.raises(DeployerError) as short:
        runner.run(argv)
    assert str(short.value).endswith(" failed: step 2: boom")
    with pytest.raises(DeployerError, match=r" failed: exit status 4$"):
        runner.run(["sh", "-c", "exit 4"])
