"""Regenerate the template's ``openapi.json`` (a Jinja template) from what the generated code produces.

    python cookiecutter-auto-service/tools/refresh_openapi.py          # rewrite it
    python cookiecutter-auto-service/tools/refresh_openapi.py --check  # exit 1 if it is out of date

Bakes the template twice (with and without the example resource) using sentinel answers, asks each bake's
``python -m <package>.openapi`` for its document, and writes one Jinja template that renders either: the
sentinels become ``{{ cookiecutter.* }}`` expressions and the example's paths and schemas sit in an
``{% if %}`` block. Needs cookiecutter and FastAPI in the running Python (the toolkit's test extras).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
TARGET = TEMPLATE / "{{cookiecutter.service_slug}}" / "openapi.json"
TITLE, DESCRIPTION, VERSION = "@@TITLE@@", "@@DESCRIPTION@@", "v987654321"
IF_EXAMPLE = '{% if cookiecutter.example_resource == "yes" %}'


def generated(example: str, out: Path) -> dict[str, Any]:
    """The OpenAPI document of a bake with ``example_resource=example``."""
    answers = {
        "service_name": TITLE,
        "service_slug": f"refresh-{example}",
        "description": DESCRIPTION,
        "api_version": VERSION,
        "example_resource": example,
    }
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(out)))
    package = project.name.replace("-", "_")
    env = {**os.environ, "PYTHONPATH": str(project)}
    text = subprocess.run(
        [sys.executable, "-m", f"{package}.openapi"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(text)


def members(mapping: dict[str, Any], depth: int) -> str:
    """``mapping``'s entries as JSON object members (no braces) indented for nesting ``depth``."""
    body = json.dumps(mapping, indent=2, ensure_ascii=False).splitlines()[1:-1]
    return "\n".join(" " * (2 * (depth - 1)) + line for line in body)


def template_text() -> str:
    """The Jinja template for ``openapi.json``."""
    with tempfile.TemporaryDirectory() as tmp:
        yes, no = generated("yes", Path(tmp)), generated("no", Path(tmp))
    extra_paths = {k: v for k, v in yes["paths"].items() if k not in no["paths"]}
    extra_schemas = {k: v for k, v in yes["components"]["schemas"].items() if k not in no["components"]["schemas"]}
    if {k: v for k, v in yes["paths"].items() if k in no["paths"]} != no["paths"]:
        raise SystemExit("the shared paths differ between the two variants: the template cannot express that")
    no["paths"]["@@PATHS@@"] = None
    no["components"]["schemas"]["@@SCHEMAS@@"] = None
    text = json.dumps(no, indent=2, ensure_ascii=False) + "\n"
    for marker, extra, depth in (("@@PATHS@@", extra_paths, 3), ("@@SCHEMAS@@", extra_schemas, 4)):
        line = f',\n{" " * (2 * (depth - 1))}"{marker}": null'
        assert line in text, marker
        block = f"{IF_EXAMPLE},\n{members(extra, depth)}{{% endif %}}" if extra else ""
        text = text.replace(line, block)
    text = text.replace(f'"title": "{TITLE}"', '"title": {{ cookiecutter.service_name | tojson }}')
    text = text.replace(
        f'\n    "description": "{DESCRIPTION}",',
        '{% if cookiecutter.description %}\n    "description": {{ cookiecutter.description | tojson }},{% endif %}',
    )
    text = text.replace(f'"version": "{VERSION}"', '"version": {{ cookiecutter.api_version | tojson }}')
    for sentinel in (TITLE, DESCRIPTION, VERSION, "refresh-"):
        if sentinel in text:
            raise SystemExit(f"{sentinel!r} is still in the template: the generated document uses it somewhere new")
    return text


def main(argv: list[str] | None = None) -> int:
    """Write or check the template's openapi.json."""
    parser = argparse.ArgumentParser(description="Regenerate the template's openapi.json.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the template's openapi.json is stale")
    args = parser.parse_args(argv)
    text = template_text()
    if args.check:
        if TARGET.read_text(encoding="utf-8") != text:
            print(f"Error: {TARGET} is out of date: run {Path(__file__).name} and commit it", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
