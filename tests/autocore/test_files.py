from __future__ import annotations

import os
from pathlib import Path

import pytest

from autocore.files import DEFAULT_MODE, write_atomic


def test_new_file_gets_the_default_mode_and_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.json"
    write_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert target.stat().st_mode & 0o777 == DEFAULT_MODE
    assert os.listdir(target.parent) == ["out.json"]


def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "secret.cfg"
    target.write_text("old")
    target.chmod(0o600)
    write_atomic(target, b"new", durable=True)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
