"""The entry scaffold that all three commands share: one Error line, exit codes, --json, interruptions."""

from __future__ import annotations

import argparse
import os
import signal
from typing import Any

import pytest

from autocore.cli import OneLineArgumentParser, run_command
from autocore.errors import EXIT_INTERRUPTED, ToolkitError


class Refused(ToolkitError):
    exit_code = 4

    def json_report(self) -> dict[str, Any]:
        return {"result": "refused"}


def parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="tool")
    p.add_argument("what", choices=("ok", "refuse", "crash", "term", "hostile"))
    p.add_argument("--json", action="store_true")
    return p


def dispatch(args: argparse.Namespace) -> int:
    if args.what == "refuse":
        raise Refused("the server said no")
    if args.what == "hostile":
        raise ToolkitError("name \x1b[31mred\x1b[0m\nsecond line")
    if args.what == "term":
        os.kill(os.getpid(), signal.SIGTERM)
    if args.what == "crash":
        raise KeyboardInterrupt
    print("fine")
    return 0


def test_success(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(parser(), dispatch, ["ok"]) == 0
    assert capsys.readouterr().out == "fine\n"


def test_error_is_one_line_with_its_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(parser(), dispatch, ["refuse"]) == 4
    out, err = capsys.readouterr()
    assert (out, err) == ("", "Error: the server said no\n")


def test_json_report_of_a_failure_goes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(parser(), dispatch, ["refuse", "--json"]) == 4
    out, err = capsys.readouterr()
    assert out == '{\n  "result": "refused"\n}\n'
    assert err == "Error: the server said no\n"


def test_untrusted_text_in_an_error_is_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(parser(), dispatch, ["hostile"]) == 2
    assert capsys.readouterr().err == "Error: name \\x1b[31mred\\x1b[0m second line\n"


def test_ctrl_c_and_sigterm_are_interruptions(capsys: pytest.CaptureFixture[str]) -> None:
    before = signal.getsignal(signal.SIGTERM)
    assert run_command(parser(), dispatch, ["crash"], interrupted="interrupted; cleaned up") == EXIT_INTERRUPTED
    assert run_command(parser(), dispatch, ["term"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "Error: interrupted; cleaned up\nError: interrupted\n"
    assert signal.getsignal(signal.SIGTERM) is before  # restored


def test_bad_command_line_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_command(parser(), dispatch, ["nope\x1b"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: argument what: invalid choice: 'nope\\x1b'")
