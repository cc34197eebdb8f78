"""The environment-state client's transport: its configuration, bounded retries, and error statuses.

Strict on purpose: TLS is always verified, redirects are never followed, the token only travels over
https (or plain http to loopback) and never appears in a message or repr, and every failure maps onto
an exception of ``deployer.errors``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Self
from urllib.parse import urlsplit

import requests

from deployer.errors import (
    ConfigError,
    DeployerError,
    StateAuthError,
    StateConflictError,
    StateUnavailableError,
    TLSError,
    UnknownEnvironmentError,
)
from deployer.state.answers import Checker, show
from deployer.state.contract import CONTROL_RE, TOKEN_RE

_NO_TOKEN = "this needs a token: set AUTO_STATE_TOKEN or AUTO_STATE_TOKEN_FILE"
# AUTO_STATE_TIMEOUT and AUTO_STATE_RETRIES: the client's own settings, not the contract's.
_MAX_TIMEOUT = 3600
_MAX_RETRIES = 20


def _is_connect_failure(exc: requests.exceptions.ConnectionError) -> bool:
    """True when no byte of the request can have reached the server (safe to retry a POST)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    # urllib3 wraps refused/unresolvable connections in NewConnectionError (NameResolutionError
    # is a subclass); anything else (reset, remote disconnect) may come after the request was sent.
    return type(reason).__name__ in ("NewConnectionError", "NameResolutionError")


class Transport:
    """The half of :class:`~deployer.state.client.StateClient` that talks HTTP: settings, retries, statuses.

    The client's API methods call :meth:`_call`; which errors are retried is said in the client's
    docstring. Building one (``__init__``, :meth:`from_env`) checks every setting before any request.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        ca_bundle: str | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"invalid environment-state service URL {show(base_url)}: use https://HOST:PORT")
        if parts.username is not None or parts.password is not None:
            raise ConfigError("the environment-state service URL must not contain credentials")
        if parts.query or parts.fragment:
            raise ConfigError("the environment-state service URL must not have a query or fragment")
        if token is not None:
            token = token.strip()
            if not token:
                token = None
            elif not TOKEN_RE.fullmatch(token):
                # Checked here so that requests never echoes the token in an "invalid header" error.
                raise ConfigError("the token must be printable ASCII without spaces: check AUTO_STATE_TOKEN")
        if ca_bundle and not os.path.isfile(ca_bundle):
            raise ConfigError(f"CA bundle {ca_bundle} does not exist: check AUTO_STATE_CA")
        if retries < 0:
            raise ConfigError("retries must be 0 or more")
        self.base_url = base_url.rstrip("/")
        self._token = token
        # verify is never False: ca_bundle or the system/certifi trust store.
        self._verify: str | bool = ca_bundle if ca_bundle else True
        self._timeout = (connect_timeout, read_timeout)
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        if session is None:
            session = requests.Session()
            # No proxies, CA bundles or .netrc credentials from the environment: .netrc would
            # replace our Authorization header, and the CA to trust is AUTO_STATE_CA only.
            session.trust_env = False
        self._session = session

    def _token_may_travel(self) -> bool:
        """The bearer token goes over https, or over plain http only to a loopback address."""
        parts = urlsplit(self.base_url)
        if parts.scheme == "https":
            return True
        host = parts.hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def __repr__(self) -> str:
        return f"StateClient({self.base_url!r}, token={'<set>' if self._token else None})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **kwargs: Any) -> Self:
        """Build a client from AUTO_STATE_URL, AUTO_STATE_TOKEN / AUTO_STATE_TOKEN_FILE, AUTO_STATE_CA,
        AUTO_STATE_TIMEOUT and AUTO_STATE_RETRIES; ConfigError when they are missing or malformed.

        Extra keyword arguments (e.g. ``session``, ``sleep``) are passed to the constructor.
        """
        url = environ.get("AUTO_STATE_URL", "").strip()
        if not url:
            raise ConfigError(
                "AUTO_STATE_URL is not set: point it at the environment-state service "
                '(or run: eval "$(auto-deploy lab env)")'
            )
        token = environ.get("AUTO_STATE_TOKEN", "").strip() or None
        token_file = environ.get("AUTO_STATE_TOKEN_FILE", "").strip()
        if token is None and token_file:
            try:
                with open(token_file, encoding="utf-8") as handle:
                    token = handle.read().strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                raise ConfigError(f"cannot read AUTO_STATE_TOKEN_FILE {token_file}: {reason}") from None
            if not token:
                raise ConfigError(f"AUTO_STATE_TOKEN_FILE {token_file} is empty")
        ca = environ.get("AUTO_STATE_CA", "").strip() or None
        if ca is not None and not os.path.isfile(ca):
            raise ConfigError(f"AUTO_STATE_CA {ca} does not exist: point it at the service's CA bundle")
        options: dict[str, Any] = {}
        timeout = environ.get("AUTO_STATE_TIMEOUT", "").strip()
        if timeout:
            try:
                options["read_timeout"] = float(timeout)
            except ValueError:
                options["read_timeout"] = -1.0
            if not 0 < options["read_timeout"] <= _MAX_TIMEOUT:
                raise ConfigError(f"AUTO_STATE_TIMEOUT {show(timeout)} is not a number of seconds (0-{_MAX_TIMEOUT})")
        retries = environ.get("AUTO_STATE_RETRIES", "").strip()
        if retries:
            if not retries.isdigit() or int(retries) > _MAX_RETRIES:
                raise ConfigError(f"AUTO_STATE_RETRIES {show(retries)} is not a whole number from 0 to {_MAX_RETRIES}")
            options["retries"] = int(retries)
        options.update(kwargs)
        return cls(url, token=token, ca_bundle=ca, **options)

    # ---- transport

    def _scrub(self, text: str, limit: int = 300) -> str:
        """One line, bounded, and never the token (whatever the server echoes)."""
        text = CONTROL_RE.sub(" ", text).strip()
        if self._token:
            text = text.replace(self._token, "<token>")
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def _error_message(self, response: requests.Response, limit: int = 300) -> str:
        try:
            message = response.json().get("error")
        except (ValueError, AttributeError):
            message = None
        if isinstance(message, str) and message:
            return self._scrub(message, limit)
        return f"HTTP {response.status_code}"

    def _unavailable(self, attempts: int, last: str) -> StateUnavailableError:
        return StateUnavailableError(
            f"environment-state service at {self.base_url} unreachable after {attempts} attempts "
            f"(last: {last}): check AUTO_STATE_URL and that the service is up"
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        write: bool = False,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """One logical request with bounded retries; returns a response with status < 500.

        ``idempotent`` (default: every method but POST) allows retrying after the request may
        have reached the server (read timeouts, dropped connections, 5xx)."""
        if write and not self._token:
            raise ConfigError(_NO_TOKEN)
        if write and not self._token_may_travel():
            raise ConfigError(
                "refusing to send the token over plain http to a host other than loopback: use https in AUTO_STATE_URL"
            )
        headers = {"Accept": "application/json"}
        if write:
            headers["Authorization"] = f"Bearer {self._token}"
        if idempotent is None:
            idempotent = method != "POST"
        attempts = self._retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                self._sleep(self._backoff * 2 ** (attempt - 1))
            try:
                response = self._session.request(
                    method,
                    self.base_url + path,
                    json=body,
                    params=params,
                    headers=headers,
                    timeout=self._timeout,
                    verify=self._verify,
                    allow_redirects=False,  # never carry the token to another place
                )
            except requests.exceptions.SSLError as exc:
                raise TLSError("TLS verification of the environment-state service failed: check AUTO_STATE_CA") from exc
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                connect_failure = isinstance(exc, requests.exceptions.ConnectionError) and _is_connect_failure(exc)
                if not idempotent and not connect_failure:
                    raise StateUnavailableError(
                        f"environment-state service at {self.base_url} dropped the connection during "
                        f"{method} {path}; not retried because the write may have been applied: "
                        "check its history"
                    ) from None
                last = type(exc).__name__
                continue
            except requests.exceptions.Timeout:
                # A read timeout: the server got the request and may have applied it.
                if not idempotent:
                    raise StateUnavailableError(
                        f"environment-state service at {self.base_url} did not answer {method} {path} "
                        "in time; not retried because the write may have been applied: check its history"
                    ) from None
                last = "ReadTimeout"
                continue
            except requests.exceptions.RequestException as exc:
                raise ConfigError(
                    f"cannot send {method} {path} to the environment-state service: {type(exc).__name__}"
                ) from None
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                if not idempotent and response.status_code != 503:
                    raise StateUnavailableError(
                        f"environment-state service at {self.base_url} failed on {method} {path} ({last}: "
                        f"{self._error_message(response)}); not retried because the write may have been "
                        "applied: check its history"
                    )
                continue
            return response
        raise self._unavailable(attempts, last)

    def _call(
        self,
        method: str,
        path: str,
        expect: tuple[int, ...],
        *,
        environment: str | None = None,
        body: Any = None,
        params: dict[str, Any] | None = None,
        write: bool = False,
        idempotent: bool | None = None,
        on_conflict: Callable[[requests.Response], DeployerError] | None = None,
    ) -> tuple[int, Any]:
        """Send, map error statuses onto exceptions, and decode the JSON answer.

        ``on_conflict`` turns a 409 into the exception to raise (default StateConflictError)."""
        response = self._send(method, path, body=body, params=params, write=write, idempotent=idempotent)
        status = response.status_code
        if status in (401, 403):
            raise StateAuthError(f"environment-state service refused the token (HTTP {status}): check AUTO_STATE_TOKEN")
        if status == 404:
            message = self._error_message(response)
            if environment is not None and message.startswith("unknown environment"):
                raise self._unknown_environment(environment)
            raise ConfigError(
                f"environment-state service at {self.base_url} answered HTTP 404 to {method} {path}: "
                "check AUTO_STATE_URL points at the environment-state service"
            )
        if status == 409:
            if on_conflict is not None:
                raise on_conflict(response)
            raise StateConflictError(self._error_message(response))
        if 300 <= status < 400:
            raise ConfigError(
                f"environment-state service at {self.base_url} answered a redirect (HTTP {status}): "
                "check AUTO_STATE_URL (https? port? path?)"
            )
        if 400 <= status < 500:
            raise ConfigError(
                f"environment-state service rejected {method} {path} (HTTP {status}): {self._error_message(response)}"
            )
        check = Checker(environment, f"{method} {path}")
        if status not in expect:
            check.fail(f"unexpected HTTP {status} to {method} {path}")
        try:
            data = json.loads(response.content)
        except ValueError:
            check.fail("answer is not JSON")
        return status, data

    def _unknown_environment(self, name: str) -> UnknownEnvironmentError:
        """The error for a 404 naming ``name``; the client adds which environments there are."""
        return UnknownEnvironmentError(f"unknown environment '{name}'")
