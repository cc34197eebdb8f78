"""Every toolkit CLI folds its phases into GitLab collapsible sections under GitLab CI, and only there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docgen.cli import main as docs_main
from pipelines.cli import main as pipelines_main

SAMPLES = Path(__file__).resolve().parents[2] / "docgen" / "toolkit-docs" / "samples"
START = "\x1b[0Ksection_start:"
END = "\x1b[0Ksection_end:"


def _sample_spec() -> str:
    return str(SAMPLES / "orders" / "openapi.yaml")


def test_docs_validate_sections_on_stdout_under_gitlab(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITLAB_CI", "true")
    assert docs_main(["validate", _sample_spec()]) == 0
    out = capsys.readouterr().out
    assert out.startswith(START) and ":auto_docs_validate\r" in out and END in out
    assert "1 spec(s) checked: 1 valid" in out


def test_docs_validate_json_stays_pure_json_under_gitlab(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITLAB_CI", "true")
    assert docs_main(["validate", "--json", _sample_spec()]) == 0
    assert json.loads(capsys.readouterr().out)[0]["ok"] is True


def test_docs_merge_sections_on_stderr_under_gitlab_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = str(SAMPLES.parent / "services.yml")
    args = ["merge", "--manifest", manifest, "--out", str(tmp_path / "api.json"), "--cache", str(tmp_path / "c")]
    monkeypatch.delenv("GITLAB_CI", raising=False)
    docs_main(args)
    assert START not in capsys.readouterr().err
    monkeypatch.setenv("GITLAB_CI", "true")
    docs_main(args)
    err = capsys.readouterr().err
    assert ":auto_docs_gather\r" in err and err.count(START) == err.count(END) == 1


def test_pipelines_render_section_under_gitlab(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    descriptor = tmp_path / "auto-service.yml"
    descriptor.write_text("name: a\nversion: v1\ndocs: docs\npipeline:\n  components: [build, test]\n")
    monkeypatch.setenv("GITLAB_CI", "true")
    assert pipelines_main(["render", str(descriptor)]) == 0
    err = capsys.readouterr().err
    assert ":auto_pipelines_render\r" in err and END in err
