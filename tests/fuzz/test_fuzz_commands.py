"""Fuzz the commands through their CLIs on hostile files: the exit code is a documented one, every error is
one `Error:` line, and no traceback ever reaches the user."""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from deployer import compose
from deployer.errors import ConfigError
from docgen.cli import main as docs_main
from pipelines.cli import main as pipelines_main
from tests.fuzz.strategies import as_yaml, documents, hostile_text, nasty_text


def run_cli(main: Callable[[Sequence[str]], int], argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def assert_clean_errors(err: str) -> None:
    assert "Traceback" not in err
    for line in err.splitlines():
        assert line.startswith(("Error: ", "warning: ", "== ")) or line.endswith("checked") or " " in line, line


@given(st.one_of(hostile_text, documents.map(lambda d: {"stages": ["build"], "job": d}).map(str)))
def test_pipelines_lint(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, ".gitlab-ci.yml")
        path.write_text(text, errors="surrogatepass")
        code, err = run_cli(pipelines_main, ["lint", str(path)])
    assert code in (0, 2, 3), (code, err)
    assert_clean_errors(err)


@given(hostile_text, st.sampled_from(["spec.yaml", "spec.json"]))
def test_docs_validate(text: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, name)
        path.write_text(text, errors="surrogatepass")
        code, err = run_cli(docs_main, ["validate", str(path)])
    assert code in (0, 2, 3), (code, err)
    assert_clean_errors(err)


@given(st.one_of(hostile_text, documents.map(lambda d: {"services": {"web": d}}).map(str)))
def test_compose_files(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "stack.yml")
        path.write_text(text, errors="surrogatepass")
        try:
            compose.load([str(path)])
        except ConfigError as exc:
            assert "\n" not in str(exc)


@given(st.one_of(hostile_text, documents.map(lambda d: {"title": "t", "services": [d]}).map(as_yaml)))
def test_docs_manifest(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "services.yml")
        path.write_text(text, errors="surrogatepass")
        code, err = run_cli(docs_main, ["merge", "--manifest", str(path), "--out", str(Path(tmp, "out.json"))])
    assert code in (0, 2, 3), (code, err)
    assert_clean_errors(err)


DESCRIPTOR = """name: orders
version: v1
pipeline:
  components: [build, test, deploy-staging, pages]
  inputs:
    deploy-staging:
      url: https://orders.staging.example
"""


@given(
    st.sampled_from(["test.stage", "build.stage", "deploy-staging.environment", "pages.docs-dir", "test.tox-envs"]),
    nasty_text,
)
def test_render_inputs(name: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        descriptor = Path(tmp, "auto-service.yml")
        descriptor.write_text(DESCRIPTOR)
        code, err = run_cli(pipelines_main, ["render", str(descriptor), "--dry-run", "--input", f"{name}={value}"])
    assert code in (0, 2, 3), (code, err)
    assert_clean_errors(err)
    if code == 0 and name.endswith(".stage"):
        assert "dry run" in err  # rendered, linted, and its structure did not change (render reads it back)
