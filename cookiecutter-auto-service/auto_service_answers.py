"""The checks of the template's answers: refuse what would make a broken service, before anything is on disk.

cookiecutter loads this module (``_extensions`` in ``cookiecutter.json``; cruft too) and renders the private
variable ``__package_name`` right after the questions: its ``checked_package_name`` filter raises
:class:`AnswerRefused` for a bad answer, and the ``cookiecutter`` and ``cruft`` commands print that as ONE line,
``Error: <what is wrong>; nothing was generated.``, and exit 1, before the project directory exists (how click
and typer handle a ``ClickException``: no traceback). The ``pre_gen_project`` hook reports the same verdict
(``answer_problem``) for what skips the questions (``cookiecutter --replay``).

Every check is a full match of the whole answer (``re.fullmatch``), and no answer may hold a character that is
not printable (line breaks, tabs, other control or invisible formatting characters).
"""

from __future__ import annotations

import keyword
import re
import sys
from collections.abc import Mapping
from typing import Any

import click
from cookiecutter.exceptions import CookiecutterException
from jinja2 import Environment
from jinja2.ext import Extension

QUESTIONS = ("service_name", "service_slug", "api_version", "description", "owner", "port", "example_resource")
QUESTIONS += ("docs_url",)
# ASCII only: [a-z0-9] never matches other scripts' letters or digits, as str.isdigit() and \d would.
SLUG = re.compile(r"[a-z][a-z0-9-]{1,40}")
VERSION = re.compile(r"v[0-9]+")
PORT = re.compile(r"[1-9][0-9]{0,4}")
HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DOCS_URL = re.compile("https://" + HOST + r"(?:\." + HOST + r")*(?::[1-9][0-9]{0,4})?(?:/[A-Za-z0-9._~%+-]+)*/?")
# Plain YAML 1.1 (PyYAML, GitLab) reads these as booleans or null, not as the slug.
YAML_WORDS = {"yes", "no", "on", "off", "true", "false", "null"}
CHOICES = ("yes", "no")


try:  # cruft's CLI is typer's, and typer (0.2x) has its own copy of click: it must see its own ClickException.
    from typer._click.exceptions import ClickException as TyperClickException
except ImportError:  # no typer, or one that uses click itself
    TyperClickException = click.ClickException
CLICK_ERRORS = tuple(dict.fromkeys((click.ClickException, TyperClickException)))


class AnswerRefused(*CLICK_ERRORS, CookiecutterException):
    """An answer the template refuses: the cookiecutter and cruft commands print it without a traceback (click's
    and typer's handling of a ``ClickException``: ``Error: <message>`` on stderr, exit 1); from Python, a
    ``CookiecutterException``."""


def shown(value: str) -> str:
    """``value`` for the message: quoted, escaped, and cut short when it is long."""
    return repr(value if len(value) <= 60 else value[:57] + "...")


def problem(answers: Mapping[str, str]) -> str | None:
    """The first thing wrong with the answers, phrased as what to do; None when they are fine."""
    for key, value in answers.items():
        bad = next((char for char in value if not char.isprintable()), None)
        if bad is not None:
            return (
                f"{key} {shown(value)} is not valid: it holds {bad!r}; use printable characters only "
                "(no line breaks, tabs or other control or invisible characters)"
            )
    name, slug, version = answers["service_name"], answers["service_slug"], answers["api_version"]
    port, docs_url, example = answers["port"], answers["docs_url"], answers["example_resource"]
    if not name.strip():
        return f"service_name {shown(name)} is not valid: give the service a title (e.g. Orders)"
    if not SLUG.fullmatch(slug):
        return (
            f"service_slug {shown(slug)} is not valid: use 2-41 lower-case letters, digits and '-', "
            "starting with a letter (e.g. orders)"
        )
    package = slug.replace("-", "_")
    if keyword.iskeyword(package) or package in sys.stdlib_module_names:
        return f"service_slug {slug!r} would shadow Python's own {package!r}: choose another slug (e.g. {slug}-service)"
    if slug in YAML_WORDS:
        return f"service_slug {slug!r} reads as a YAML boolean or null: choose another slug (e.g. {slug}-service)"
    if not VERSION.fullmatch(version):
        return f"api_version {shown(version)} is not valid: use 'v' and a number (e.g. v1)"
    if not PORT.fullmatch(port) or not 1024 <= int(port) <= 65535:
        return f"port {shown(port)} is not valid: use a number from 1024 to 65535 in ASCII digits (e.g. 8080)"
    if example not in CHOICES:
        return f"example_resource {shown(example)} is not valid: use yes or no"
    if not DOCS_URL.fullmatch(docs_url):
        return (
            f"docs_url {shown(docs_url)} is not valid: use an https:// URL of a host and a path of letters, "
            f"digits and - . _ ~ % + / only, no query or fragment (e.g. https://auto.pages.example.com/{slug})"
        )
    return None


def answer_problem(cookiecutter: Mapping[str, Any]) -> str:
    """What is wrong with the answers in the ``cookiecutter`` context, or ""."""
    return problem({key: str(cookiecutter[key]) for key in QUESTIONS}) or ""


def checked_package_name(cookiecutter: Mapping[str, Any]) -> str:
    """The package name (the slug, ``_`` for ``-``) of answers that pass; :class:`AnswerRefused` otherwise."""
    message = answer_problem(cookiecutter)
    if message:
        raise AnswerRefused(f"{message}; nothing was generated.")
    return str(cookiecutter["service_slug"]).replace("-", "_")


class AnswerChecks(Extension):
    """Registers ``checked_package_name`` (cookiecutter.json) and ``answer_problem`` (the pre_gen_project hook)."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.update(answer_problem=answer_problem, checked_package_name=checked_package_name)
