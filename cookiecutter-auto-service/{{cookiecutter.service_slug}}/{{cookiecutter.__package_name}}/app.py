"""The FastAPI application: the layers wired together, and every ``ApiError`` turned into a problem response.

Run it with ``python -m {{ cookiecutter.__package_name }}``.
The API gateway adds the ``/api/<service>/<version>`` prefix; the service serves its routes at ``/``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from . import API_VERSION
from .adapter import {% if cookiecutter.example_resource == "yes" %}ItemStore as Store{% else %}Store{% endif %}
from .api import Problem, problems, router
from .controller import Controller
from .exceptions import ApiError, MalformedRequest

TITLE = {{ cookiecutter.service_name | py_str }}
DESCRIPTION = {{ cookiecutter.description | py_str }}
PROBLEM_JSON = "application/problem+json"

log = logging.getLogger(__name__)


def problem_response(error: ApiError) -> JSONResponse:
    """The HTTP response for an ``ApiError``."""
    return JSONResponse(error.problem(), status_code=error.status_code, media_type=PROBLEM_JSON)


async def on_api_error(_request: Request, error: Exception) -> JSONResponse:
    """Any layer's ``ApiError``: its status and one-line detail."""
    assert isinstance(error, ApiError)
    if error.status_code >= 500:
        log.warning("%s: %s", type(error).__name__, error.detail)
    return problem_response(error)


async def on_malformed(_request: Request, error: Exception) -> JSONResponse:
    """FastAPI's own request validation, reported as the API layer's ``MalformedRequest``."""
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return problem_response(MalformedRequest(f"{where}: {first.get('msg', 'invalid request')}"))


def create_app(store: Store | None = None) -> FastAPI:
    """A new app around ``store`` (a fresh one by default)."""
    app = FastAPI(title=TITLE, description=DESCRIPTION, version=API_VERSION)
    app.state.controller = Controller(store if store is not None else Store())
    app.include_router(router)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_malformed)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's document, with the problem schema every error refers to, and 400 where FastAPI says 422.

        FastAPI documents its own request validation as 422 ``HTTPValidationError``; this app answers those
        requests with the API layer's 400 ``MalformedRequest`` (``on_malformed``), so the document says so.
        """
        if app.openapi_schema is None:
            spec = generate()
            for path in spec.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if "HTTPValidationError" in str(responses.get("422")):
                        del responses["422"]
                        responses["400"] = problems(400)[400]
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            schemas["Problem"] = Problem.model_json_schema()
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()
