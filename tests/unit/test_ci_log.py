"""GitLab collapsible sections appear only under GitLab CI."""

import io

from autocore import ci_log


def test_markers_are_gitlab_format() -> None:
    assert ci_log.section_start("deploy auto", "Deploying", now=1700000000.7, collapsed=True) == (
        "\x1b[0Ksection_start:1700000000:deploy_auto[collapsed=true]\r\x1b[0KDeploying\n"
    )
    assert ci_log.section_end("deploy auto", now=1700000001) == "\x1b[0Ksection_end:1700000001:deploy_auto\r\x1b[0K\n"


def test_section_under_gitlab() -> None:
    out = io.StringIO()
    with ci_log.section("wait", "Waiting", stream=out, environ={"GITLAB_CI": "true"}):
        out.write("inside\n")
    text = out.getvalue()
    assert text.startswith("\x1b[0Ksection_start:") and "inside\n" in text and "section_end:" in text


def test_plain_header_elsewhere() -> None:
    out = io.StringIO()
    with ci_log.section("wait", "Waiting", stream=out, environ={}):
        pass
    assert out.getvalue() == "== Waiting\n"


def test_no_header_elsewhere_when_asked() -> None:
    out = io.StringIO()
    with ci_log.section("wait", "Waiting", stream=out, environ={}, header_outside_ci=False):
        out.write("inside\n")
    assert out.getvalue() == "inside\n"
