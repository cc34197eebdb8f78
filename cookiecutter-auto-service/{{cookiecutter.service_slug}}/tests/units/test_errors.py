"""Every ``ApiError`` subclass becomes a problem response with its own status, whichever layer raised it."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from flexmock import flexmock

from {{ cookiecutter.__package_name }} import exceptions
from {{ cookiecutter.__package_name }}.controller import Controller
from {{ cookiecutter.__package_name }}.exceptions import ApiError, UpstreamUnavailable


def all_errors() -> list[type[ApiError]]:
    """ApiError and every subclass of it, however deep."""
    found: list[type[ApiError]] = [ApiError]
    for cls in found:
        found.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("error_class", all_errors(), ids=lambda cls: cls.__name__)
def test_every_error_is_a_problem_response(error_class: type[ApiError], app: FastAPI, client: TestClient) -> None:
    """The handler answers with the class's status and a problem document."""

    @app.get("/raise")
    def raise_it() -> None:
        raise error_class("something\nwent wrong")

    response = client.get("/raise")
    assert response.status_code == error_class.status_code
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": error_class("x").type,
        "title": error_class.title,
        "status": error_class.status_code,
        "detail": "something went wrong",
    }


def test_layers_have_their_own_base() -> None:
    """Each layer's errors inherit its base, and every base inherits ApiError."""
    assert issubclass(exceptions.MalformedRequest, exceptions.ApiLayerError)
    assert issubclass(exceptions.ValidationFailed, exceptions.ControllerError)
    for cls in (exceptions.NotFound, exceptions.Conflict, exceptions.UpstreamUnavailable):
        assert issubclass(cls, exceptions.AdapterError)
    for base in (exceptions.ApiLayerError, exceptions.ControllerError, exceptions.AdapterError):
        assert issubclass(base, ApiError)


def test_health(client: TestClient) -> None:
    """Healthy when the store answers."""
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_when_the_store_is_down(store: object, client: TestClient) -> None:
    """UpstreamUnavailable from the adapter becomes 503."""
    flexmock(store).should_receive("ping").and_raise(UpstreamUnavailable("store down")).once()
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["type"] == "upstream-unavailable"


def test_unknown_endpoint_is_a_programming_error(controller: Controller) -> None:
    """The controller refuses an endpoint it has no route for."""
    with pytest.raises(LookupError):
        controller.handle("no.such.endpoint", {})


def test_unexpected_error_is_a_500(app: FastAPI, client: TestClient) -> None:
    """Anything that is not an ApiError is a plain 500, with no detail leaked."""
    flexmock(app.state.controller).should_receive("health").and_raise(RuntimeError("secret"))
    response = client.get("/health")
    assert response.status_code == 500
    assert "secret" not in response.text
