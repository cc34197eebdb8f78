"""Fixtures for the unit tests: a fresh store, controller and app for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from {{ cookiecutter.__package_name }}.adapter import {% if cookiecutter.example_resource == "yes" %}ItemStore as Store{% else %}Store{% endif %}
from {{ cookiecutter.__package_name }}.app import create_app
from {{ cookiecutter.__package_name }}.controller import Controller


@pytest.fixture
def store() -> Store:
    """An empty store."""
    return Store()


@pytest.fixture
def controller(store: Store) -> Controller:
    """A controller on the fresh store."""
    return Controller(store)


@pytest.fixture
def app(store: Store) -> FastAPI:
    """An app on the fresh store."""
    return create_app(store)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An in-process HTTP client for ``app`` (server errors become 500 responses, not exceptions)."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
