"""The ``cookiecutter-auto-service`` template: every service it bakes passes its own checks the moment it exists.

Two bakes (the defaults, and non-default answers without the example resource) each run the commands of their
own ``tox.ini`` (lint, test, docs, spec) in the one service virtualenv of the session (``conftest.py``).
The stack file is checked against the Compose specification, the pipeline against GitLab's CI schema (both
check-jsonschema's built-in schemas), the descriptor with the docs portal's own loader. Bad answers must stop
the bake with one line and leave nothing behind, and ``cruft`` must be able to create and update a service.

Needs PyPI (the shared virtualenv) and git (cruft); without them the tests skip, or fail when CI=true.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.exceptions import CookiecutterException, FailedHookException
from cookiecutter.main import cookiecutter
from markdown_it import MarkdownIt

from docgen.manifest import load_descriptor
from tests.cookiecutter.helpers import (
    ROOT,
    TEMPLATE,
    TIMEOUT,
    bake,
    clean_env,
    cruft,
    git,
    run,
    run_tox_env,
)
from tests.support import unavailable

CUSTOM = {
    "service_name": "Billing API",
    "service_slug": "billing-api",
    "api_version": "v2",
    "port": "9090",
    "example_resource": "no",
    "description": "Invoices: \"quoted\" and 'single'.",
    "owner": "Team Ledger",
}
TOX_ENVS = ["lint", "test", "docs", "spec"]


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two bakes: ``default`` and ``custom``."""
    out = tmp_path_factory.mktemp("bakes")
    return {"default": bake(out / "default"), "custom": bake(out / "custom", **CUSTOM)}


@pytest.mark.parametrize("env_name", TOX_ENVS)
@pytest.mark.parametrize("which", ["default", "custom"])
def test_generated_checks_pass(projects: dict[str, Path], service_venv: Path, which: str, env_name: str) -> None:
    """Each tox environment's commands pass in the freshly generated project."""
    run_tox_env(projects[which], env_name, service_venv)


def test_longest_slug_and_empty_description(service_venv: Path, tmp_path: Path) -> None:
    """The longest slug the hook allows still lints at line-length 120; an empty description still matches the spec."""
    slug = "a-very-long-service-slug-for-line-lengths"
    assert len(slug) == 41
    project = bake(tmp_path, service_slug=slug, description="")
    for env_name in ("lint", "spec"):
        run_tox_env(project, env_name, service_venv)


def test_default_answers(projects: dict[str, Path]) -> None:
    """The defaults: slug derived from the name, the example resource included."""
    project = projects["default"]
    assert project.name == "orders"
    assert (project / "orders" / "api.py").read_text().count("/items") == 3
    assert (project / "tests" / "units" / "test_items.py").is_file()
    spec = json.loads((project / "openapi.json").read_text())
    assert set(spec["paths"]) == {"/health", "/items", "/items/validate", "/items/{item_id}"}


def test_custom_answers_without_example(projects: dict[str, Path]) -> None:
    """Non-default answers: package name from the slug, only /health, the example's tests removed."""
    project = projects["custom"]
    assert project.name == "billing-api"
    package = project / "billing_api"
    assert {p.name for p in package.glob("*.py")} >= {"api.py", "controller.py", "adapter.py", "exceptions.py"}
    assert "items" not in (package / "api.py").read_text()
    assert not (project / "tests" / "units" / "test_items.py").exists()
    assert not (project / "tests" / "functional" / "test_items.py").exists()
    spec = json.loads((project / "openapi.json").read_text())
    assert set(spec["paths"]) == {"/health"}
    assert spec["info"] == {"title": "Billing API", "description": CUSTOM["description"], "version": "v2"}
    assert "EXPOSE 9090" in (project / "Dockerfile").read_text()


@pytest.mark.parametrize("which", ["default", "custom"])
def test_descriptor_is_what_the_portal_reads(projects: dict[str, Path], which: str) -> None:
    """auto-service.yml has exactly the descriptor's keys (the portal's and `pipeline:`); the portal reads it."""
    project = projects[which]
    raw = yaml.safe_load((project / "auto-service.yml").read_text())
    assert set(raw) == {"name", "version", "title", "docs", "spec", "deprecated_aliases", "pipeline"}
    entry = load_descriptor(project / "auto-service.yml")
    expected = ("orders", "v1", "Orders") if which == "default" else ("billing-api", "v2", "Billing API")
    assert (entry.name, entry.version, entry.title) == expected
    assert entry.docs is not None and Path(entry.docs, "index.md").is_file()
    assert entry.spec is not None and Path(entry.spec).is_file()
    assert entry.deprecated_aliases is False


def check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    """Run check-jsonschema from this suite's environment."""
    if shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) is None:
        unavailable("check-jsonschema is not installed (pip install check-jsonschema)")
    return run([str(Path(sys.executable).parent / "check-jsonschema"), *args], cwd=ROOT)


@pytest.mark.parametrize("which", ["default", "custom"])
def test_stack_file_is_valid_compose(projects: dict[str, Path], which: str) -> None:
    """docker-stack.yml validates against the Compose specification and has the deployer's labels."""
    stack = projects[which] / "docker-stack.yml"
    result = check_jsonschema("--builtin-schema", "vendor.compose-spec", str(stack))
    assert result.returncode == 0, result.stdout + result.stderr
    services = yaml.safe_load(stack.read_text())["services"]
    (service,) = services.values()
    deploy = service["deploy"]
    version = "v1" if which == "default" else "v2"
    assert deploy["labels"]["auto.docs.version"] == version
    assert deploy["labels"]["auto.docs.spec"].startswith("https://")
    assert deploy["labels"]["auto.docs.spec"].endswith("/openapi.json")
    update = deploy["update_config"]
    assert (update["failure_action"], update["order"]) == ("rollback", "start-first") and update["monitor"]
    assert deploy["rollback_config"]
    assert service["healthcheck"]["test"][0] == "CMD"
    assert service["image"].startswith("${IMAGE:-")


@pytest.mark.parametrize("which", ["default", "custom"])
def test_pipeline_is_valid_gitlab_ci(projects: dict[str, Path], which: str) -> None:
    """.gitlab-ci.yml validates against GitLab's CI schema and includes the toolkit's four components."""
    pipeline = projects[which] / ".gitlab-ci.yml"
    result = check_jsonschema("--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci", str(pipeline))
    assert result.returncode == 0, result.stdout + result.stderr
    components = [item["component"] for item in yaml.safe_load(pipeline.read_text())["include"]]
    names = [c.split("/")[-1] for c in components]
    assert names == ["build@1", "test@1", "deploy-staging@1", "pages@1"]
    assert all(c.startswith("$CI_SERVER_FQDN/auto/toolkit/") for c in components)


@pytest.mark.parametrize("which", ["default", "custom"])
def test_pipeline_is_what_auto_pipelines_renders_from_the_descriptor(projects: dict[str, Path], which: str) -> None:
    """.gitlab-ci.yml is exactly the render of auto-service.yml's `pipeline:` section (the real CLI, --check)."""
    project = projects[which]
    before = (project / ".gitlab-ci.yml").read_bytes()
    result = run([sys.executable, "-m", "pipelines", "render", "--check"], cwd=project)
    up_to_date = ".gitlab-ci.yml is up to date (build, test, deploy-staging, pages)\n"
    assert (result.returncode, result.stderr) == (0, up_to_date), result.stdout + result.stderr
    assert (project / ".gitlab-ci.yml").read_bytes() == before
    slug = CUSTOM["service_slug"] if which == "custom" else "orders"
    staging = yaml.safe_load(before)["include"][2]["inputs"]
    assert staging == {"service": slug, "url": f"https://{slug}.staging.example.com"}


def test_dockerfile(projects: dict[str, Path]) -> None:
    """Overridable base image, non-root user, health check."""
    text = (projects["default"] / "Dockerfile").read_text()
    assert text.startswith("ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n")
    assert "\nUSER 10001\n" in text and "\nHEALTHCHECK " in text


@pytest.mark.parametrize(
    ("answers", "words"),
    [
        ({"service_slug": "Bad_Slug"}, "service_slug 'Bad_Slug' is not valid"),
        ({"service_slug": "x"}, "service_slug 'x' is not valid"),
        ({"service_slug": "json"}, "would shadow Python's own 'json'"),
        ({"api_version": "1.0"}, "api_version '1.0' is not valid"),
        ({"port": "80"}, "port '80' is not valid"),
        ({"port": "http"}, "port 'http' is not valid"),
    ],
)
def test_bad_answers_fail_cleanly(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], answers: dict[str, str], words: str
) -> None:
    """Refused before anything is written, with one line saying what to do."""
    assert words in refusal(tmp_path, capfd, answers)


def refusal(tmp_path: Path, capfd: pytest.CaptureFixture[str], answers: dict[str, str]) -> str:
    """The one line a bake with ``answers`` is refused with (the commands print it as ``Error: <line>``).

    It is refused in-process, right after the questions: nothing is printed, nothing reaches ``tmp_path``.
    """
    capfd.readouterr()
    with pytest.raises(CookiecutterException) as refused:
        bake(tmp_path, **answers)
    (line,) = str(refused.value).splitlines()
    assert line.endswith("; nothing was generated.") and line.isprintable(), line
    assert capfd.readouterr() == ("", "")
    assert list(tmp_path.iterdir()) == []
    return line


def test_bad_answer_on_the_command_line(tmp_path: Path) -> None:
    """The cookiecutter CLI: exit 1, our one line is all of stderr, and nothing is written."""
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(TEMPLATE), "api_version=2"]
    result = run(command, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: api_version '2' is not valid: use 'v' and a number (e.g. v1); nothing was generated."
    ]
    assert list(tmp_path.iterdir()) == []


# --- answers: refused with one line, or written into every file as a literal of its language -------------------

PRINTABLE_ONLY = "use printable characters only (no line breaks, tabs or other control or invisible characters)"
REFUSED = [
    ({"service_slug": "orders\n"}, "service_slug 'orders\\n' is not valid: it holds '\\n'; " + PRINTABLE_ONLY),
    ({"api_version": "v1\n"}, "api_version 'v1\\n' is not valid: it holds '\\n'"),
    ({"service_name": "Orders\nall:\n\techo pwned"}, "service_name 'Orders\\nall:\\n\\techo pwned' is not valid"),
    ({"description": 'x"""\n__import__("os").system("id")\n"""'}, 'description \'x"""\\n__import__'),
    ({"owner": "Team\x1b[31m"}, "owner 'Team\\x1b[31m' is not valid: it holds '\\x1b'"),
    ({"description": "reversed \u202e txt"}, "description 'reversed \\u202e txt' is not valid: it holds '\\u202e'"),
    ({"service_name": "  ", "service_slug": "blank"}, "service_name '  ' is not valid: give the service a title"),
    ({"service_name": " "}, "service_name ' ' is not valid: give the service a title"),
    ({"service_slug": "no"}, "service_slug 'no' reads as a YAML boolean or null"),
    ({"port": "８０８０"}, "port '８０８０' is not valid: use a number from 1024 to 65535 in ASCII digits"),
    ({"port": "65536"}, "port '65536' is not valid"),
    ({"port": "08080"}, "port '08080' is not valid"),
    ({"port": "8080\n"}, "port '8080\\n' is not valid"),
    ({"example_resource": "maybe"}, "example_resource 'maybe' is not valid: use yes or no"),
    ({"docs_url": "http://docs.example.com"}, "docs_url 'http://docs.example.com' is not valid: use an https:// URL"),
    ({"docs_url": "https://docs.example.com/a b"}, "docs_url 'https://docs.example.com/a b' is not valid"),
    ({"docs_url": 'https://docs.example.com/x"\n    evil: 1'}, "docs_url 'https://docs.example.com/x\"\\n    evil: 1'"),
    ({"docs_url": 'https://docs.example.com/x" # evil'}, "docs_url 'https://docs.example.com/x\" # evil' is not"),
    ({"docs_url": "https://docs.example.com/${IMAGE}"}, "docs_url 'https://docs.example.com/${IMAGE}' is not"),
    ({"docs_url": "https://docs.example.com/?q=1"}, "docs_url 'https://docs.example.com/?q=1' is not valid"),
    ({"docs_url": "https://docs.example.com\n"}, "docs_url 'https://docs.example.com\\n' is not valid"),
    ({"docs_url": "https://"}, "docs_url 'https://' is not valid"),
]


@pytest.mark.parametrize(("answers", "words"), REFUSED)
def test_unsafe_answers_are_refused(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], answers: dict[str, str], words: str
) -> None:
    """Full-match checks, no control characters, ASCII ports, https docs_url: one printable line, nothing on disk."""
    assert words in refusal(tmp_path, capfd, answers)


def test_the_hook_refuses_an_edited_replay(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], cookiecutter_config: Path
) -> None:
    """`--replay` skips the questions and their check: the pre_gen_project hook still refuses, with one line."""
    bake(tmp_path / "first")
    replay = json.loads((cookiecutter_config / "replay" / f"{TEMPLATE.name}.json").read_text())
    replay["cookiecutter"]["service_slug"] = "Bad_Slug"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(replay))
    out = tmp_path / "out"
    capfd.readouterr()
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), replay=str(edited), output_dir=str(out))
    (line,) = capfd.readouterr().err.strip().splitlines()
    assert line.startswith("Error: service_slug 'Bad_Slug' is not valid") and line.endswith("nothing was generated.")
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("answer", "line"),
    [
        ("service_slug=orders\n", f"service_slug 'orders\\n' is not valid: it holds '\\n'; {PRINTABLE_ONLY}"),
        ("api_version=v1\n", f"api_version 'v1\\n' is not valid: it holds '\\n'; {PRINTABLE_ONLY}"),
        ("service_name=Orders\nall:\n\techo pwned", "service_name 'Orders\\nall:\\n\\techo pwned' is not valid: it "),
        ("port=８０８０", "port '８０８０' is not valid: use a number from 1024 to 65535 in ASCII digits (e.g. 8080)"),
        ("example_resource=maybe", "example_resource 'maybe' is not valid: use yes or no"),
        ('docs_url=https://x.example.com/a"\n  evil: 1', "docs_url 'https://x.example.com/a\"\\n  evil: 1' is not "),
        ("docs_url=ftp://x.example.com", "docs_url 'ftp://x.example.com' is not valid: use an https:// URL of a host"),
    ],
)
def test_refusal_by_the_cookiecutter_command(tmp_path: Path, answer: str, line: str) -> None:
    """The real `cookiecutter --no-input TEMPLATE key=value`: exit 1, our one line is all it prints (stderr)."""
    executable = Path(sys.executable).parent / "cookiecutter"
    if not executable.exists():
        unavailable("the cookiecutter command is not installed next to this Python")
    out = tmp_path / "out"
    command = [str(executable), "--no-input", "-o", str(out), str(TEMPLATE), answer]
    result = subprocess.run(
        command, cwd=tmp_path, env=clean_env(), capture_output=True, encoding="utf-8", timeout=TIMEOUT, check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == "", result.stdout
    (only,) = result.stderr.strip().splitlines()
    assert only.startswith(f"Error: {line}") and only.endswith("; nothing was generated."), only
    assert not out.exists() or list(out.iterdir()) == []


HOSTILE = {
    "service_name": 'Evil "Orders" \\ #1 `x` <b>&amp; $HOME',
    "service_slug": "evil-orders",
    "api_version": "v3",
    "port": "9191",
    "example_resource": "yes",
    "description": (
        '- """; __import__("os").system("touch PWNED"); """ \'\'\' \\ "q" \\n key: value # [link](x.md) *em* _u_ '
        "<b>b</b> &amp; $(id) ${IMAGE} {role}`x` 😀 ８０８０ 日本語 ünïcödé" + " and a long tail" * 8
    ),
    "owner": "Team \"Ledger\" \\ <ops@example.com> # 'x' {y}",
    "docs_url": "https://docs.example.com:8443/a_b/c~d%20e+f/",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bake whose free-text answers hold every kind of quote, escape and markup (all of them allowed)."""
    return bake(tmp_path_factory.mktemp("hostile"), **HOSTILE)


def literal_assignments(path: Path) -> dict[str, Any]:
    """``NAME = <literal>`` statements of a Python file, evaluated as literals (the file is only parsed)."""
    values = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def docstring(path: Path) -> str | None:
    """The module docstring of a Python file, as written."""
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)


def markdown_blocks(path: Path) -> list[str]:
    """The inline text of each heading and paragraph of a Markdown file, as markdown-it (CommonMark) reads it."""
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    return ["".join(child.content for child in t.children or []) for t in tokens if t.type == "inline"]


def test_hostile_answers_are_literals_in_every_file(hostile: Path, tmp_path: Path) -> None:
    """Python, TOML, YAML, JSON and Markdown all read back exactly the answers; nothing is executed."""
    name, description, owner = HOSTILE["service_name"], HOSTILE["description"], HOSTILE["owner"]
    for source in hostile.rglob("*.py"):
        compile(source.read_text(encoding="utf-8"), str(source), "exec")
    package = hostile / "evil_orders"
    assert docstring(package / "__init__.py") == f"{name}: {description}"
    assert literal_assignments(package / "__init__.py") == {
        "SERVICE": "evil-orders",
        "API_VERSION": "v3",
        "__version__": "0.1.0",
    }
    app = literal_assignments(package / "app.py")
    assert (app["TITLE"], app["DESCRIPTION"]) == (name, description)
    conf = literal_assignments(hostile / "docs" / "conf.py")
    assert (conf["project"], conf["author"], conf["release"]) == (name, owner, "v3")
    code = "import json, evil_orders as p, evil_orders.app as a; print(json.dumps([p.__doc__, a.TITLE, a.DESCRIPTION]))"
    imported = run([sys.executable, "-c", code], cwd=tmp_path, env=clean_env(PYTHONPATH=str(hostile)))
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == [f"{name}: {description}", name, description]
    assert not list(tmp_path.rglob("PWNED")) and not list(hostile.rglob("PWNED"))

    project = tomllib.loads((hostile / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert (project["name"], project["description"], project["authors"]) == (
        "evil-orders",
        description,
        [{"name": owner}],
    )
    descriptor = yaml.safe_load((hostile / "auto-service.yml").read_text(encoding="utf-8"))
    assert (descriptor["name"], descriptor["version"], descriptor["title"]) == ("evil-orders", "v3", name)
    assert load_descriptor(hostile / "auto-service.yml").title == name
    stack = yaml.safe_load((hostile / "docker-stack.yml").read_text(encoding="utf-8"))
    (service,) = stack["services"].values()
    assert service["deploy"]["labels"] == {
        "auto.docs.version": "v3",
        "auto.docs.spec": "https://docs.example.com:8443/a_b/c~d%20e+f/openapi.json",
    }
    assert service["environment"] == {"PORT": "9191"}
    spec = json.loads((hostile / "openapi.json").read_text(encoding="utf-8"))
    assert spec["info"] == {"title": name, "description": description, "version": "v3"}

    for page in (hostile / "README.md", hostile / "docs" / "index.md"):
        blocks = markdown_blocks(page)
        assert blocks[0] in (name, f"{name} (v3)"), blocks[0]
        assert blocks[1] == description, blocks[1]
        assert f"wned by {owner}." in blocks[2], blocks[2]


def test_no_answer_text_reaches_the_makefile(hostile: Path, tmp_path: Path) -> None:
    """The Makefile depends only on the validated slug, package and port: free text never reaches make."""
    plain = bake(tmp_path, service_slug=HOSTILE["service_slug"], port=HOSTILE["port"])
    assert (hostile / "Makefile").read_text() == (plain / "Makefile").read_text()
    if shutil.which("make"):
        result = run(["make", "-n", "help"], cwd=hostile)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("env_name", TOX_ENVS)
def test_hostile_bake_passes_its_checks(hostile: Path, service_venv: Path, env_name: str) -> None:
    """lint (line length, with a long description of wide characters), test, docs (-W) and spec all pass."""
    run_tox_env(hostile, env_name, service_venv)
    assert not list(hostile.rglob("PWNED"))


@pytest.mark.parametrize("text", ['"', '"""', "'''", "\\", 'ends with \\"', "x\\", "a # b: c - d"])
def test_quotes_in_free_text_answers(tmp_path: Path, text: str) -> None:
    """The tester's cases: a quote or triple quote in description, name or owner still makes valid files."""
    project = bake(tmp_path, service_slug="quotes", description=text, service_name=f"Q {text}", owner=text)
    package = project / "quotes"
    assert docstring(package / "__init__.py") == f"Q {text}: {text}"
    assert literal_assignments(package / "app.py")["DESCRIPTION"] == text
    assert literal_assignments(project / "docs" / "conf.py")["author"] == text
    assert tomllib.loads((project / "pyproject.toml").read_text())["project"]["description"] == text
    assert yaml.safe_load((project / "auto-service.yml").read_text())["title"] == f"Q {text}"


def test_template_openapi_is_current() -> None:
    """The template's openapi.json is exactly what tools/refresh_openapi.py makes from the generated code."""
    result = run([sys.executable, str(TEMPLATE / "tools" / "refresh_openapi.py"), "--check"], cwd=ROOT)
    assert result.returncode == 0, result.stderr


# --- cruft ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def template_repo(tmp_path: Path) -> Iterator[Path]:
    """A git repository holding a copy of the template in its subdirectory, as the toolkit's repository does."""
    if shutil.which("git") is None:
        unavailable("git is not installed")
    repo = tmp_path / "toolkit"
    shutil.copytree(TEMPLATE, repo / TEMPLATE.name, ignore=shutil.ignore_patterns("__pycache__", ".ruff_cache"))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "template v1")
    yield repo


def test_cruft_create_check_update(template_repo: Path, tmp_path: Path) -> None:
    """cruft records the template; check passes at once; a template change is brought in by update."""
    out = tmp_path / "out"
    out.mkdir()
    where = ["--output-dir", str(out), "--directory", TEMPLATE.name]
    created = cruft("create", "--no-input", *where, template_repo.as_uri(), cwd=tmp_path)
    assert created.returncode == 0, created.stdout + created.stderr
    project = out / "orders"
    record: dict[str, Any] = json.loads((project / ".cruft.json").read_text())
    assert Path(record["template"].removeprefix("file://")) == template_repo
    assert record["directory"] == TEMPLATE.name
    assert record["context"]["cookiecutter"]["service_slug"] == "orders"
    checked = cruft("check", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    git(project, "init", "-q")  # cruft update applies the template's diff with git
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")

    readme = template_repo / TEMPLATE.name / "{{cookiecutter.service_slug}}" / "README.md"
    readme.write_text(readme.read_text() + "\n## Changelog\n\nTemplate change for {{ cookiecutter.service_name }}.\n")
    git(template_repo, "commit", "-q", "-am", "template v2")
    stale = cruft("check", cwd=project)
    assert stale.returncode != 0, "cruft check should see the template has moved on"

    updated = cruft("update", "-y", cwd=project)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "Template change for Orders." in (project / "README.md").read_text()
    assert not list(project.rglob("*.rej"))
    again = cruft("check", cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
