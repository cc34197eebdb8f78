"""Fuzz: the shared loaders and every parser built on them either load a document or refuse it with one of
the errors they document; never another exception, never past their budgets."""

from __future__ import annotations

import contextlib

import yaml
from hypothesis import given

from autocore.errors import ToolkitError
from autocore.loading import load_json, load_yaml, load_yaml_documents
from tests.fuzz.strategies import hostile_text


@given(hostile_text)
def test_load_yaml(text: str) -> None:
    with contextlib.suppress(ToolkitError, yaml.YAMLError):
        load_yaml(text, "fuzz.yaml")


@given(hostile_text)
def test_load_yaml_documents(text: str) -> None:
    with contextlib.suppress(ToolkitError, yaml.YAMLError):
        load_yaml_documents(text + "\n---\n" + text, "fuzz.yaml")


@given(hostile_text)
def test_load_json(text: str) -> None:
    with contextlib.suppress(ToolkitError, ValueError):  # json.JSONDecodeError is a ValueError
        load_json(text, "fuzz.json")
