"""openapi-spec-validator's errors for a spec, through openapi-spec-validator-rs when it is installed.

A prototype (see /tmp/validator-eval.md): ``openapi-spec-validator-rs`` is a Rust port of
openapi-spec-validator 0.9.0 with the same verdicts, messages, paths and order. It is an optional
package here: without it every function below runs openapi-spec-validator itself, with the same output.

Both backends run offline: an ``http(s)://`` (or any other) ``$ref`` target is refused, never fetched.

* :func:`library_errors` is openapi-spec-validator's ``iter_errors()``: the document against the
  version's OpenAPI JSON Schema, then the semantic walk (schemas, defaults, parameters, operationIds).
* :func:`walk_errors` is the semantic walk alone (``root_validator``), the slow part that
  ``docgen.validate._library_issues`` runs on a copy of the spec without bad ``$ref``s.

Normalisation, the same for both backends: a walk that stops (an unresolvable ``$ref``, a reference
cycle, a malformed path template) ends the list with one :class:`LibraryError` of kind ``"aborted"``
whose message is the reason; the errors found before it are not kept (the Rust backend does not
return them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BACKEND", "LibraryError", "backend", "library_errors", "walk_errors"]

# "rs", "python" or "" (automatic: rs when importable). Set DOCGEN_SPEC_VALIDATOR=python to force upstream.
_FORCED = os.environ.get("DOCGEN_SPEC_VALIDATOR", "")

_UNSET: Any = object()


@dataclass(frozen=True)
class LibraryError:
    """One error: where (path parts from the document root), what, and upstream's exception class name."""

    path: tuple[str | int, ...]
    message: str
    kind: str = "OpenAPIValidationError"
    # The offending value, when the error has one (upstream's ``error.instance``); not compared.
    instance: Any = field(default=_UNSET, compare=False, repr=False)

    @property
    def pair(self) -> tuple[tuple[str | int, ...], str]:
        return self.path, self.message


def _rs_available() -> bool:
    try:
        import openapi_spec_validator_rs  # noqa: F401
    except ImportError:
        return False
    return True


def backend() -> str:
    """The backend in use: ``"rs"`` (openapi-spec-validator-rs) or ``"python"`` (openapi-spec-validator)."""
    if _FORCED in ("rs", "python"):
        return _FORCED
    return "rs" if _rs_available() else "python"


BACKEND = backend()

_KEYS = {"2.0": "2.0", "3.0": "3.0", "3.1": "3.1", "3.2": "3.2"}


def _version_key(document: dict[str, Any], version: str | None) -> str:
    """``"2.0"``, ``"3.0"``, ``"3.1"`` or ``"3.2"``, from ``version`` or the document's own key."""
    if version is None:
        version = str(document.get("swagger") if "swagger" in document else document.get("openapi"))
    key = _KEYS.get(".".join(str(version).split(".")[:2]))
    if key is None:
        raise ValueError(f"not a Swagger 2.0 or OpenAPI 3.x version: {version!r}")
    return key


# --------------------------------------------------------------------------- openapi-spec-validator


class _OfflineHandler:
    def __call__(self, uri: str) -> Any:
        raise OSError(f"docgen validates offline: not fetching {uri}")


class _OfflineHandlers(dict):
    """Claims every URI scheme (so jsonschema-path never falls back to urlopen) and refuses them all."""

    def __contains__(self, scheme: object) -> bool:
        return True

    def __missing__(self, scheme: str) -> _OfflineHandler:
        return _OfflineHandler()


_OFFLINE_CLASSES: dict[str, type] = {}


def _python_class(key: str) -> type:
    if key not in _OFFLINE_CLASSES:
        from openapi_spec_validator import (
            OpenAPIV2SpecValidator,
            OpenAPIV30SpecValidator,
            OpenAPIV31SpecValidator,
            OpenAPIV32SpecValidator,
        )

        base = {
            "2.0": OpenAPIV2SpecValidator,
            "3.0": OpenAPIV30SpecValidator,
            "3.1": OpenAPIV31SpecValidator,
            "3.2": OpenAPIV32SpecValidator,
        }[key]
        _OFFLINE_CLASSES[key] = type(f"Offline{base.__name__}", (base,), {"resolver_handlers": _OfflineHandlers()})
    return _OFFLINE_CLASSES[key]


def _convert(error: Any) -> LibraryError:
    return LibraryError(
        tuple(error.absolute_path), error.message, type(error).__name__, getattr(error, "instance", _UNSET)
    )


def _python_errors(document: dict[str, Any], key: str, walk_only: bool) -> list[LibraryError]:
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    validator = _python_class(key)(document)
    found: list[LibraryError] = []
    try:
        errors = validator.root_validator(validator.schema_path) if walk_only else validator.iter_errors()
        for error in errors:
            if not isinstance(error, OpenAPIValidationError):  # the walk yields jsonschema's errors unwrapped
                found.append(
                    LibraryError(
                        tuple(error.absolute_path),
                        error.message,
                        "OpenAPIValidationError",
                        getattr(error, "instance", _UNSET),
                    )
                )
            else:
                found.append(_convert(error))
    except RecursionError:
        return [LibraryError((), "maximum recursion depth exceeded", "aborted")]
    except Exception as exc:  # noqa: BLE001 - upstream stops on an unresolvable $ref, a bad path template...
        return [LibraryError((), _abort_reason(exc), "aborted")]
    return found


def _abort_reason(exc: BaseException) -> str:
    return str(exc)


# --------------------------------------------------------------------------- openapi-spec-validator-rs


def _refuse(url: str) -> bytes:
    raise OSError(f"docgen validates offline: not fetching {url}")


def _meta_error_count(document: dict[str, Any], key: str) -> int:
    """How many errors openapi-spec-validator's JSON-Schema pass reports (they come before the walk's)."""
    from openapi_spec_validator.schemas.backend.jsonschema_rs import has_jsonschema_rs_validators

    base = _python_class(key)
    precise = base.schema_validator
    if has_jsonschema_rs_validators():
        from openapi_spec_validator.schemas.backend.jsonschema_rs import create_validator

        fast = _FAST.get(key)
        if fast is None:
            fast = _FAST[key] = create_validator(dict(precise.schema))
        if fast.is_valid(document):
            return 0
    return sum(1 for _ in precise.iter_errors(document))


_FAST: dict[str, Any] = {}


def _rs_errors(document: dict[str, Any], key: str, walk_only: bool) -> list[LibraryError]:
    from openapi_spec_validator_rs import _core, _stack
    from openapi_spec_validator_rs.exceptions import ValidationAbortedError, _from_core

    try:
        core = _core.validate(document, key, "", True, _refuse, _stack.spec_depth(), _stack.limit())
    except ValidationAbortedError as exc:
        return [LibraryError((), str(exc), "aborted")]
    errors = [_from_core(error) for error in core]
    if walk_only:
        errors = errors[_meta_error_count(document, key) :]
    return [_convert(error) for error in errors]


# --------------------------------------------------------------------------- the API


def library_errors(
    document: dict[str, Any], version: str | None = None, *, using: str | None = None
) -> list[tuple[tuple[str | int, ...], str]]:
    """openapi-spec-validator's errors for ``document``, in its order, as ``(path parts, message)``."""
    return [error.pair for error in library_errors_detailed(document, version, using=using)]


def library_errors_detailed(
    document: dict[str, Any], version: str | None = None, *, using: str | None = None
) -> list[LibraryError]:
    """:func:`library_errors` with each error's class name (and value)."""
    key = _version_key(document, version)
    if (using or BACKEND) == "rs":
        return _rs_errors(document, key, walk_only=False)
    return _python_errors(document, key, walk_only=False)


def walk_errors(
    document: dict[str, Any], version: str | None = None, *, using: str | None = None
) -> list[LibraryError]:
    """The semantic walk's errors alone (what ``root_validator`` yields), in upstream's order."""
    key = _version_key(document, version)
    if (using or BACKEND) == "rs":
        return _rs_errors(document, key, walk_only=True)
    return _python_errors(document, key, walk_only=True)
