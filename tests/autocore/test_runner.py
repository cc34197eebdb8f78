from __future__ import annotations

import sys
from pathlib import Path

import pytest

from autocore.runner import CommandTimedOutError, ProgramNotFoundError, execute, spawn


def test_execute_captures_both_streams_apart_or_merged() -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    apart = execute([sys.executable, "-c", code])
    assert (apart.returncode, apart.stdout, apart.stderr) == (3, "out\n", "err\n")
    merged = execute([sys.executable, "-c", code], merge_stderr=True)
    assert sorted(merged.stdout.splitlines()) == ["err", "out"]


def test_execute_feeds_input_and_environment() -> None:
    proc = execute(
        [sys.executable, "-c", "import os, sys; print(sys.stdin.read() + os.environ['X'])"],
        input="in-",
        env={"X": "env"},
    )
    assert proc.stdout == "in-env\n"


def test_missing_program_and_timeout_are_toolkit_errors() -> None:
    with pytest.raises(ProgramNotFoundError) as missing:
        execute(["/nonexistent/program"])
    assert missing.value.program == "/nonexistent/program"
    with pytest.raises(CommandTimedOutError, match=r"did not finish within 0 s"):
        execute([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2)


def test_log_and_spawn_append_output_to_a_file(tmp_path: Path) -> None:
    log = tmp_path / "log"
    execute([sys.executable, "-c", "print('one')"], log=log)
    spawn([sys.executable, "-c", "print('two')"], log=log).wait(timeout=30)
    assert log.read_text() == "one\ntwo\n"
