"""Every error the service reports on purpose.

``ApiError`` carries an HTTP status code and a one-line detail; the handlers in ``app.py`` turn any of them into
an ``application/problem+json`` response (RFC 9457). Each layer raises only its own subclasses:

* API (presentation): ``MalformedRequest``
* controller (business logic): ``ValidationFailed``
* adapter (data access): ``NotFound``, ``Conflict``, ``UpstreamUnavailable``
"""

from __future__ import annotations


class ApiError(Exception):
    """The base of every deliberate error: an HTTP status, a short title and a one-line detail."""

    status_code: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str) -> None:
        self.detail = " ".join(str(detail).split()) or self.title  # one line, whatever it was given
        super().__init__(self.detail)

    @property
    def type(self) -> str:
        """The problem type: a stable, kebab-case name for clients to branch on."""
        return "".join(f"-{c.lower()}" if c.isupper() else c for c in type(self).__name__).lstrip("-")

    def problem(self) -> dict[str, object]:
        """The problem document sent to the client."""
        return {"type": self.type, "title": self.title, "status": self.status_code, "detail": self.detail}


# --- API layer -------------------------------------------------------------------------------------------------


class ApiLayerError(ApiError):
    """Raised by the API layer: the request itself could not be read."""

    status_code = 400
    title = "Bad request"


class MalformedRequest(ApiLayerError):
    """The payload is not what the endpoint documents (wrong JSON, missing or mistyped fields)."""

    status_code = 400
    title = "Malformed request"


# --- controller layer ------------------------------------------------------------------------------------------


class ControllerError(ApiError):
    """Raised by the controller: the request was read but breaks a business rule."""

    status_code = 422
    title = "Unprocessable request"


class ValidationFailed(ControllerError):
    """The payload is well-formed but not acceptable."""

    status_code = 422
    title = "Validation failed"


# --- adapter layer ---------------------------------------------------------------------------------------------


class AdapterError(ApiError):
    """Raised by the adapter: data access or an external call went wrong."""

    status_code = 500
    title = "Data access failed"


class NotFound(AdapterError):
    """The record does not exist."""

    status_code = 404
    title = "Not found"


class Conflict(AdapterError):
    """The record clashes with one that exists."""

    status_code = 409
    title = "Conflict"


class UpstreamUnavailable(AdapterError):
    """A store or service the adapter depends on did not answer."""

    status_code = 503
    title = "Upstream unavailable"
