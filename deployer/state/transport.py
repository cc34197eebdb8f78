"""The environment-state client's transport: its configuration, bounded retries, and error statuses.

Strict on purpose: TLS is always verified, redirects are never followed, the token only travels over
https (or plain http to loopback) and never appears in a message or repr, and every failure maps onto
an exception of ``deployer.errors``.

Bounded on purpose: each call has an overall deadline (``deadline``, AUTO_STATE_DEADLINE) that covers
every attempt, however slowly the answer trickles in (``deadline`` module), and an answer is read as a
stream and refused past ``max_answer`` bytes (AUTO_STATE_MAX_ANSWER) and parsed with budgets (depth,
integer size), so a hostile or broken service costs a one-line error, not a hang or the memory.

Every write carries an ``Idempotency-Key``, one per logical write, the same on each retry: a write
whose answer was lost (a timeout, a dropped connection, a gateway error) is sent again, and the service
answers a write it applied already from the key's stored answer instead of applying it twice.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Self
from urllib.parse import urlsplit

import requests

from autocore.errors import ToolkitError
from autocore.loading import Budget, load_json
from autocore.names import has_control
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
from deployer.state.contract import CONTROL_RE, IDEMPOTENCY_HEADER, MAX_ANSWER_DEPTH, MAX_INT_DIGITS, TOKEN_RE
from deployer.state.deadline import DeadlineAdapter, guarded

_NO_TOKEN = "this needs a token: set AUTO_STATE_TOKEN or AUTO_STATE_TOKEN_FILE"
# AUTO_STATE_TIMEOUT, AUTO_STATE_RETRIES, AUTO_STATE_DEADLINE and AUTO_STATE_MAX_ANSWER: the client's
# own settings, not the contract's.
_MAX_TIMEOUT = 3600
_MAX_RETRIES = 20
DEFAULT_DEADLINE = 60.0  # seconds for one call, every attempt and pause included
DEFAULT_MAX_ANSWER = 64 * 1024 * 1024  # bytes of one answer
_MIN_ANSWER = 1024
_MAX_ANSWER = 1024 * 1024 * 1024
_CHUNK = 64 * 1024
_ASCII_NUMBER = re.compile(r"[0-9]{1,12}")
# Statuses of a gateway in front of the service: the write may or may not have reached it. A 500 is
# the service's own failure on that request: repeating it repeats the failure, so a POST is not.
_GATEWAY = (502, 503, 504)
# The longest pause between two attempts of a call that is retried until its deadline (``until_deadline``).
MAX_PAUSE = 2.0


class _TooBig(Exception):
    """The answer is over ``max_answer`` bytes."""


class _DeadlinePassed(Exception):
    """The call's overall deadline passed."""


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
        deadline: float = DEFAULT_DEADLINE,
        max_answer: int = DEFAULT_MAX_ANSWER,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        invalid = f"invalid environment-state service URL {show(base_url)}: use https://HOST:PORT"
        if not isinstance(base_url, str) or has_control(base_url) or any(ch.isspace() for ch in base_url):
            raise ConfigError(invalid)  # urlsplit would drop a tab or newline silently
        try:
            parts = urlsplit(base_url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
        except ValueError:  # e.g. http://[::1 (an unclosed IPv6 bracket)
            raise ConfigError(invalid) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(invalid)
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
        if not 0 < deadline <= _MAX_TIMEOUT:
            raise ConfigError(f"the deadline must be a number of seconds (0-{_MAX_TIMEOUT}), not {deadline!r}")
        if not _MIN_ANSWER <= max_answer <= _MAX_ANSWER:
            raise ConfigError(
                f"the answer size budget must be {_MIN_ANSWER} to {_MAX_ANSWER} bytes, not {max_answer!r}"
            )
        self.base_url = base_url.rstrip("/")
        self._token = token
        # verify is never False: ca_bundle or the system/certifi trust store.
        self._verify: str | bool = ca_bundle if ca_bundle else True
        self._timeout = (connect_timeout, read_timeout)
        self._retries = retries
        self._backoff = backoff
        self._deadline = float(deadline)
        self._max_answer = max_answer
        self._budget = Budget(max_bytes=max_answer, max_depth=MAX_ANSWER_DEPTH, max_int_digits=MAX_INT_DIGITS)
        self._sleep = sleep
        if session is None:
            session = requests.Session()
            # No proxies, CA bundles or .netrc credentials from the environment: .netrc would
            # replace our Authorization header, and the CA to trust is AUTO_STATE_CA only.
            session.trust_env = False
        # Requests to the service go through connections the deadline can hang up (see ``deadline``);
        # mounted for the service's URL only, so a session handed in is otherwise left as it was.
        mount = getattr(session, "mount", None)
        prefix = self.base_url + "/"
        if mount is not None and not isinstance(getattr(session, "adapters", {}).get(prefix), DeadlineAdapter):
            mount(prefix, DeadlineAdapter())
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
        AUTO_STATE_TIMEOUT (seconds per socket operation), AUTO_STATE_RETRIES, AUTO_STATE_DEADLINE
        (seconds per call, retries included) and AUTO_STATE_MAX_ANSWER (bytes of an answer);
        ConfigError when they are missing or malformed.

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
            # ASCII digits only: "²".isdigit() is true and int("²") a ValueError.
            if not _ASCII_NUMBER.fullmatch(retries) or int(retries) > _MAX_RETRIES:
                raise ConfigError(f"AUTO_STATE_RETRIES {show(retries)} is not a whole number from 0 to {_MAX_RETRIES}")
            options["retries"] = int(retries)
        deadline = environ.get("AUTO_STATE_DEADLINE", "").strip()
        if deadline:
            try:
                options["deadline"] = float(deadline)
            except ValueError:
                options["deadline"] = -1.0
            if not 0 < options["deadline"] <= _MAX_TIMEOUT:
                raise ConfigError(f"AUTO_STATE_DEADLINE {show(deadline)} is not a number of seconds (0-{_MAX_TIMEOUT})")
        max_answer = environ.get("AUTO_STATE_MAX_ANSWER", "").strip()
        if max_answer:
            if not _ASCII_NUMBER.fullmatch(max_answer) or not _MIN_ANSWER <= int(max_answer) <= _MAX_ANSWER:
                raise ConfigError(
                    f"AUTO_STATE_MAX_ANSWER {show(max_answer)} is not a number of bytes "
                    f"from {_MIN_ANSWER} to {_MAX_ANSWER}"
                )
            options["max_answer"] = int(max_answer)
        options.update(kwargs)
        return cls(url, token=token, ca_bundle=ca, **options)

    # ---- transport

    def _scrub(self, text: str, limit: int = 300) -> str:
        """One line, bounded, and never the token (whatever the server echoes)."""
        text = CONTROL_RE.sub(" ", text).strip()
        if self._token:
            text = text.replace(self._token, "<token>")
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def _decode(self, content: bytes) -> Any:
        """An answer's JSON within the answer budgets; ValueError or ToolkitError (one line) if not."""
        return load_json(content, "answer", budget=self._budget)

    def _error_message(self, response: requests.Response, limit: int = 300) -> str:
        try:
            message = self._decode(response.content).get("error")
        except (ValueError, AttributeError, ToolkitError):
            message = None
        if isinstance(message, str) and message:
            return self._scrub(message, limit)
        return f"HTTP {response.status_code}"

    def _unavailable(self, attempts: int, last: str, maybe_applied: bool = False) -> StateUnavailableError:
        if maybe_applied:
            what = "the write may have been applied: check its history"
        else:
            what = "check AUTO_STATE_URL and that the service is up"
        return StateUnavailableError(
            f"environment-state service at {self.base_url} unreachable after {attempts} attempts (last: {last}): {what}"
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
        environment: str | None = None,
        until_deadline: bool = False,
    ) -> requests.Response:
        """One logical request with bounded retries, within the deadline; returns a response with
        status < 500 whose body has been read (within ``max_answer``). ``until_deadline``: retried for as
        long as the deadline allows (pauses growing to ``MAX_PAUSE``), not ``retries`` times.

        ``idempotent`` (default: every method but POST) allows retrying after the request may have
        reached the server on any failure. A write carries an Idempotency-Key, the same on every
        attempt, so it is also re-sent after timeouts, dropped connections and gateway errors: the
        service answers a repeat from the stored answer of the attempt that got through."""
        if write and not self._token:
            raise ConfigError(_NO_TOKEN)
        if write and not self._token_may_travel():
            raise ConfigError(
                "refusing to send the token over plain http to a host other than loopback: use https in AUTO_STATE_URL"
            )
        # identity: the cap on an answer is on what the service sends, not on what it inflates to.
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        if write:
            headers["Authorization"] = f"Bearer {self._token}"
            headers[IDEMPOTENCY_HEADER] = uuid.uuid4().hex  # one per logical write, reused by its retries
        if idempotent is None:
            idempotent = method != "POST"
        resend_safe = idempotent or write
        deadline = time.monotonic() + self._deadline
        attempts = self._retries + 1
        last = ""
        maybe_applied = False  # an attempt of this write may have reached the service
        for attempt in itertools.count():
            if attempt >= attempts and not until_deadline:
                break
            if attempt:
                pause = min(self._backoff * 2 ** min(attempt - 1, 30), MAX_PAUSE if until_deadline else float("inf"))
                if time.monotonic() + pause >= deadline:
                    self._deadline_passed(method, path, write and maybe_applied)
                self._sleep(pause)
            try:
                response = self._exchange(method, path, body, params, headers, deadline)
            except _DeadlinePassed:
                self._deadline_passed(method, path, write)
            except _TooBig:
                Checker(environment, f"{method} {path}").fail(
                    f"the answer is over the answer size budget of {self._max_answer} bytes "
                    "(AUTO_STATE_MAX_ANSWER): refused"
                )
            except requests.exceptions.SSLError as exc:
                raise TLSError("TLS verification of the environment-state service failed: check AUTO_STATE_CA") from exc
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                connect_failure = isinstance(exc, requests.exceptions.ConnectionError) and _is_connect_failure(exc)
                if not resend_safe and not connect_failure:
                    raise StateUnavailableError(
                        f"environment-state service at {self.base_url} dropped the connection during "
                        f"{method} {path}; not retried because the write may have been applied: "
                        "check its history"
                    ) from None
                maybe_applied = maybe_applied or not connect_failure
                last = type(exc).__name__
                continue
            except requests.exceptions.Timeout:
                # A read timeout: the server got the request and may have applied it.
                if not resend_safe:
                    raise StateUnavailableError(
                        f"environment-state service at {self.base_url} did not answer {method} {path} "
                        "in time; not retried because the write may have been applied: check its history"
                    ) from None
                maybe_applied = True
                last = "ReadTimeout"
                continue
            except requests.exceptions.RequestException as exc:
                raise ConfigError(
                    f"cannot send {method} {path} to the environment-state service: {type(exc).__name__}"
                ) from None
            if response.status_code == 507:
                # Insufficient storage: the service rolled the write back and says so; retrying cannot help.
                raise StateUnavailableError(
                    f"environment-state service at {self.base_url} cannot store anything (HTTP 507): "
                    f"{self._error_message(response)}"
                )
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                if not idempotent and response.status_code != 503 and not (write and response.status_code in _GATEWAY):
                    raise StateUnavailableError(
                        f"environment-state service at {self.base_url} failed on {method} {path} ({last}: "
                        f"{self._error_message(response)}); not retried because the write may have been "
                        "applied: check its history"
                    )
                maybe_applied = maybe_applied or response.status_code != 503
                continue
            return response
        raise self._unavailable(attempts, last, write and maybe_applied)

    def _exchange(
        self,
        method: str,
        path: str,
        body: Any,
        params: dict[str, Any] | None,
        headers: dict[str, str],
        deadline: float,
    ) -> requests.Response:
        """One attempt, under the call's deadline: the response, its body read into ``content``."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlinePassed
        connect_timeout, read_timeout = self._timeout
        with guarded(deadline) as guard:
            try:
                response = self._session.request(
                    method,
                    self.base_url + path,
                    json=body,
                    params=params,
                    headers=headers,
                    timeout=(min(connect_timeout, remaining), min(read_timeout, remaining)),
                    verify=self._verify,
                    allow_redirects=False,  # never carry the token to another place
                    stream=True,  # the body is read below, within the budgets
                )
                try:
                    self._read_body(response)
                finally:
                    response.close()  # releases a fully read connection to the pool, drops any other
            except requests.exceptions.RequestException:
                if guard.fired or time.monotonic() >= deadline:
                    raise _DeadlinePassed from None
                raise
        return response

    def _read_body(self, response: requests.Response) -> None:
        """Read the answer as a stream into ``response.content``; _TooBig past ``max_answer`` bytes."""
        declared = response.headers.get("Content-Length", "").strip()
        if _ASCII_NUMBER.fullmatch(declared) and int(declared) > self._max_answer:
            raise _TooBig  # refused unread
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > self._max_answer:
                raise _TooBig
            chunks.append(chunk)
        response._content = b"".join(chunks)  # what response.content and .json() then answer

    def _deadline_passed(self, method: str, path: str, maybe_applied: bool) -> NoReturn:
        if maybe_applied:
            what = "; the write may have been applied: check its history"
        else:
            what = ": check that the service is up and not overloaded"
        raise StateUnavailableError(
            f"environment-state service at {self.base_url} did not answer {method} {path} within the call's "
            f"deadline of {self._deadline:g} s (AUTO_STATE_DEADLINE){what}"
        )

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
        until_deadline: bool = False,
    ) -> tuple[int, Any]:
        """Send, map error statuses onto exceptions, and decode the JSON answer.

        ``on_conflict`` turns a 409 into the exception to raise (default StateConflictError);
        ``until_deadline``: see :meth:`_send`."""
        response = self._send(
            method,
            path,
            body=body,
            params=params,
            write=write,
            idempotent=idempotent,
            environment=environment,
            until_deadline=until_deadline,
        )
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
            data = self._decode(response.content)
        except ToolkitError as exc:  # over a budget (depth, integer size) or not finite: one line
            check.fail(str(exc))
        except ValueError:
            check.fail("answer is not JSON")
        return status, data

    def _unknown_environment(self, name: str) -> UnknownEnvironmentError:
        """The error for a 404 naming ``name``; the client adds which environments there are."""
        return UnknownEnvironmentError(f"unknown environment '{name}'")
