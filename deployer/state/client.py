"""Client library of the environment-state service (see ``contract.yaml``).

Strict on purpose: TLS is always verified, answers are validated into frozen dataclasses before
anybody acts on them, failures map onto the exceptions of ``deployer.errors``, and the token never
appears in a message or repr.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit

import requests

from deployer.errors import (
    ConfigError,
    DeployerError,
    InvalidStateError,
    LockHeldError,
    StateAuthError,
    StateConflictError,
    StateUnavailableError,
    TLSError,
    UnknownEnvironmentError,
)

COLOURS = ("blue", "green")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")  # what may go into an HTTP header unchanged
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_NO_TOKEN = "this needs a token: set AUTO_STATE_TOKEN or AUTO_STATE_TOKEN_FILE"
_TIMESTAMP_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
AUDIT_KINDS = ("deploy", "rollback", "switch")


# --------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class ServiceDocs:
    """Where a service publishes its documentation: its API version, spec URL and docs URL (HTTPS)."""

    version: str
    spec_url: str
    docs_url: str | None = None


@dataclass(frozen=True)
class Service:
    """One Swarm service of a stack as last deployed."""

    name: str
    image: str
    replicas: int
    docs: ServiceDocs | None = None


@dataclass(frozen=True)
class Stack:
    """One stack deployed into a cluster."""

    name: str
    deployed_at: str
    deployed_by: str
    services: tuple[Service, ...]


@dataclass(frozen=True)
class Cluster:
    """One colour of an environment: a Swarm cluster and its manager's Docker endpoint."""

    colour: str
    manager_address: str
    docker_port: int
    live: bool
    stacks: tuple[Stack, ...] = ()

    @property
    def docker_host(self) -> str:
        """The Docker endpoint as ``tcp://ADDRESS:PORT`` (IPv6 in brackets)."""
        host = f"[{self.manager_address}]" if ":" in self.manager_address else self.manager_address
        return f"tcp://{host}:{self.docker_port}"


@dataclass(frozen=True)
class Environment:
    """A blue/green environment; exactly one of its two clusters is live."""

    name: str
    live_colour: str
    revision: int
    clusters: dict[str, Cluster] = field(hash=False)
    updated_at: str = ""

    @property
    def live_cluster(self) -> Cluster:
        """The cluster that serves traffic now."""
        return self.clusters[self.live_colour]

    @property
    def idle_colour(self) -> str:
        """The colour that is not live (where the next release goes)."""
        return other_colour(self.live_colour)

    @property
    def idle_cluster(self) -> Cluster:
        """The cluster that is not live."""
        return self.clusters[self.idle_colour]


@dataclass(frozen=True)
class Lock:
    """The lock of an environment, as the service saw it when it answered.

    ``expires_in`` is seconds by the service's clock at that moment (the service's clock decides).
    """

    owner: str
    purpose: str
    actor: str | None
    job_url: str | None
    acquired_at: str
    expires_at: str
    expires_in: float


def other_colour(colour: str) -> str:
    """``green`` for ``blue`` and vice versa."""
    return "green" if colour == "blue" else "blue"


# --------------------------------------------------------------------------------------------------
# Validation of answers


def _show(value: Any) -> str:
    """A short one-line rendering of a value from an answer."""
    if isinstance(value, str):
        text = _CONTROL_RE.sub("?", value)
        return repr(text if len(text) <= 60 else text[:57] + "...")
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    """Raises InvalidStateError naming the environment and the field."""

    def __init__(self, environment: str | None, what: str) -> None:
        self.prefix = f"invalid state for environment '{environment}'" if environment else f"invalid answer to {what}"

    def fail(self, problem: str) -> NoReturn:
        raise InvalidStateError(f"{self.prefix}: {problem}")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(f"{where} is not an object" if where != "answer" else "answer is not a JSON object")
        return value

    def get(self, mapping: dict[str, Any], key: str, where: str) -> Any:
        if key not in mapping:
            self.fail(f"{where}{key} is missing")
        return mapping[key]

    def text(self, mapping: dict[str, Any], key: str, where: str = "") -> str:
        value = self.get(mapping, key, where)
        if not isinstance(value, str) or not value:
            self.fail(f"{where}{key} {_show(value)} is not a non-empty string")
        return value

    def integer(self, mapping: dict[str, Any], key: str, where: str, low: int, high: int, what: str) -> int:
        value = self.get(mapping, key, where)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{where}{key} {_show(value)} is not an integer")
        if not low <= value <= high:
            self.fail(f"{where}{key} {value} is not {what}")
        return value

    def optional_text(self, mapping: dict[str, Any], key: str, where: str = "") -> str | None:
        value = self.get(mapping, key, where)
        if value is not None and (not isinstance(value, str) or not value):
            self.fail(f"{where}{key} {_show(value)} is not a non-empty string or null")
        return value

    def timestamp(self, mapping: dict[str, Any], key: str, where: str = "") -> str:
        value = self.text(mapping, key, where)
        if not _TIMESTAMP_RE.match(value):
            self.fail(f"{where}{key} {_show(value)} is not a UTC timestamp like 2026-11-25T06:30:00Z")
        return value

    def number(self, mapping: dict[str, Any], key: str, where: str, low: float, what: str) -> float:
        value = self.get(mapping, key, where)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(f"{where}{key} {_show(value)} is not a number")
        if not low <= value < float("inf"):
            self.fail(f"{where}{key} {value} is not {what}")
        return float(value)

    def items(self, mapping: dict[str, Any], key: str, where: str = "") -> list[Any]:
        value = self.get(mapping, key, where)
        if not isinstance(value, list):
            self.fail(f"{where}{key} is not a list")
        return value


def parse_environment(data: Any, name: str) -> Environment:
    """Validate a decoded ``Environment`` answer for environment ``name``; InvalidStateError if bad."""
    check = _Checker(name, f"GET /v1/environments/{name}")
    body = check.obj(data, "answer")
    if check.text(body, "name") != name:
        check.fail(f"name is {_show(body['name'])}, expected '{name}'")
    live_colour = check.get(body, "live_colour", "")
    if live_colour not in COLOURS or not isinstance(live_colour, str):
        check.fail(f"live_colour is {_show(live_colour)}, expected blue or green")
    revision = check.integer(body, "revision", "", 0, 2**63 - 1, "a revision")
    updated_at = body.get("updated_at", "")
    if not isinstance(updated_at, str):
        check.fail(f"updated_at {_show(updated_at)} is not a string")
    raw_clusters = check.obj(check.get(body, "clusters", ""), "clusters")
    for colour in raw_clusters:
        if colour not in COLOURS:
            check.fail(f"clusters has unknown colour {_show(colour)}")
    clusters = {colour: _parse_cluster(check, raw_clusters, colour) for colour in COLOURS}
    live = [c.colour for c in clusters.values() if c.live]
    if len(live) == 2:
        check.fail("both blue and green are marked live")
    if not live:
        check.fail("no cluster is marked live")
    if live[0] != live_colour:
        check.fail(f"clusters.{live[0]}.live is true but live_colour is {live_colour}")
    return Environment(name, live_colour, revision, clusters, updated_at)


def _parse_cluster(check: _Checker, clusters: dict[str, Any], colour: str) -> Cluster:
    where = f"clusters.{colour}."
    if colour not in clusters:
        check.fail(f"clusters.{colour} is missing")
    raw = check.obj(clusters[colour], f"clusters.{colour}")
    address = check.get(raw, "manager_address", where)
    try:
        if not isinstance(address, str):
            raise ValueError(address)
        ipaddress.ip_address(address)
    except ValueError:
        check.fail(f"{where}manager_address {_show(address)} is not an IP address")
    port = check.integer(raw, "docker_port", where, 1, 65535, "a port (1-65535)")
    live = check.get(raw, "live", where)
    if not isinstance(live, bool):
        check.fail(f"{where}live {_show(live)} is not true or false")
    stacks = tuple(
        _parse_stack(check, item, f"{where}stacks[{i}].") for i, item in enumerate(check.items(raw, "stacks", where))
    )
    return Cluster(colour, address, port, live, stacks)


def _parse_stack(check: _Checker, item: Any, where: str) -> Stack:
    raw = check.obj(item, where.rstrip("."))
    services = []
    for i, svc in enumerate(check.items(raw, "services", where)):
        svc_where = f"{where}services[{i}]."
        svc = check.obj(svc, svc_where.rstrip("."))
        services.append(
            Service(
                check.text(svc, "name", svc_where),
                check.text(svc, "image", svc_where),
                check.integer(svc, "replicas", svc_where, 0, 2**31 - 1, "a replica count"),
                _parse_docs(check, svc.get("docs"), f"{svc_where}docs"),
            )
        )
    return Stack(
        check.text(raw, "name", where),
        check.text(raw, "deployed_at", where),
        check.text(raw, "deployed_by", where),
        tuple(services),
    )


def _parse_docs(check: _Checker, value: Any, where: str) -> ServiceDocs | None:
    if value is None:
        return None
    raw = check.obj(value, where)
    urls = {}
    for key in ("spec_url", "docs_url"):
        url = check.text(raw, key, f"{where}.") if key == "spec_url" or key in raw else None
        if url is not None and not url.startswith("https://"):
            check.fail(f"{where}.{key} is not an https:// URL")
        urls[key] = url
    return ServiceDocs(check.text(raw, "version", f"{where}."), urls["spec_url"], urls["docs_url"])


def parse_lock(check: _Checker, value: Any, where: str = "lock") -> Lock | None:
    """Validate a decoded ``Lock`` (or null) answer; InvalidStateError if bad."""
    if value is None:
        return None
    raw = check.obj(value, where)
    prefix = f"{where}."
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(Lock)})
    if unknown:
        check.fail(f"{prefix}{unknown[0]} is not a field of a lock")
    return Lock(
        owner=check.text(raw, "owner", prefix),
        purpose=check.text(raw, "purpose", prefix),
        actor=check.optional_text(raw, "actor", prefix),
        job_url=check.optional_text(raw, "job_url", prefix),
        acquired_at=check.timestamp(raw, "acquired_at", prefix),
        expires_at=check.timestamp(raw, "expires_at", prefix),
        expires_in=check.number(raw, "expires_in", prefix, 0, "a number of seconds (0 or more)"),
    )


# --------------------------------------------------------------------------------------------------
# The client


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"invalid environment name {_show(name)}: use lowercase letters, digits and '-' (at most 63)")
    return name


def _is_connect_failure(exc: requests.exceptions.ConnectionError) -> bool:
    """True when no byte of the request can have reached the server (safe to retry a POST)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    # urllib3 wraps refused/unresolvable connections in NewConnectionError (NameResolutionError
    # is a subclass); anything else (reset, remote disconnect) may come after the request was sent.
    return type(reason).__name__ in ("NewConnectionError", "NameResolutionError")


class StateClient:
    """Client of the environment-state service.

    ``session`` is the transport seam (a ``requests.Session``); ``sleep`` is called between retries
    with the backoff in seconds. Reads are retried on connection errors, timeouts and 5xx; POSTs
    only on connection failures and 503; nothing is retried on 4xx or TLS failures.
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
            raise ConfigError(f"invalid environment-state service URL {_show(base_url)}: use https://HOST:PORT")
        if parts.username is not None or parts.password is not None:
            raise ConfigError("the environment-state service URL must not contain credentials")
        if parts.query or parts.fragment:
            raise ConfigError("the environment-state service URL must not have a query or fragment")
        if token is not None:
            token = token.strip()
            if not token:
                token = None
            elif not _TOKEN_RE.match(token):
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
    def from_env(cls, environ: Mapping[str, str] = os.environ, **kwargs: Any) -> StateClient:
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
            if not 0 < options["read_timeout"] <= 3600:
                raise ConfigError(f"AUTO_STATE_TIMEOUT {_show(timeout)} is not a number of seconds (0-3600)")
        retries = environ.get("AUTO_STATE_RETRIES", "").strip()
        if retries:
            if not retries.isdigit() or int(retries) > 20:
                raise ConfigError(f"AUTO_STATE_RETRIES {_show(retries)} is not a whole number from 0 to 20")
            options["retries"] = int(retries)
        options.update(kwargs)
        return cls(url, token=token, ca_bundle=ca, **options)

    # ---- transport

    def _scrub(self, text: str, limit: int = 300) -> str:
        """One line, bounded, and never the token (whatever the server echoes)."""
        text = _CONTROL_RE.sub(" ", text).strip()
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
        check = _Checker(environment, f"{method} {path}")
        if status not in expect:
            check.fail(f"unexpected HTTP {status} to {method} {path}")
        try:
            data = json.loads(response.content)
        except ValueError:
            check.fail("answer is not JSON")
        return status, data

    def _unknown_environment(self, name: str) -> UnknownEnvironmentError:
        try:
            known = self.list_environments()
        except DeployerError:
            return UnknownEnvironmentError(f"unknown environment '{name}'")
        if not known:
            return UnknownEnvironmentError(f"unknown environment '{name}': no environments are defined yet")
        return UnknownEnvironmentError(f"unknown environment '{name}': known environments are {', '.join(known)}")

    @staticmethod
    def _list_of_objects(check: _Checker, data: Any, key: str) -> list[dict[str, Any]]:
        items = check.items(check.obj(data, "answer"), key)
        for index, item in enumerate(items):
            check.obj(item, f"{key}[{index}]")
        return items

    # ---- API

    def health(self) -> dict[str, Any]:
        """``GET /v1/health``; returns ``{"status": "ok"}`` or raises."""
        _, data = self._call("GET", "/v1/health", (200,))
        check = _Checker(None, "GET /v1/health")
        if check.obj(data, "answer").get("status") != "ok":
            check.fail(f"status is {_show(data.get('status'))}, expected 'ok'")
        return data

    def list_environments(self) -> list[str]:
        """The names of all environments, sorted."""
        _, data = self._call("GET", "/v1/environments", (200,))
        check = _Checker(None, "GET /v1/environments")
        names = []
        for index, item in enumerate(self._list_of_objects(check, data, "environments")):
            name = check.text(item, "name", f"environments[{index}].")
            if not _NAME_RE.match(name):
                check.fail(f"environments[{index}].name {_show(name)} is not an environment name")
            names.append(name)
        return sorted(names)

    def get_environment(self, name: str) -> Environment:
        """The environment ``name``, validated; UnknownEnvironmentError if the service lacks it."""
        _check_name(name)
        _, data = self._call("GET", f"/v1/environments/{name}", (200,), environment=name)
        return parse_environment(data, name)

    def resolve(self, name: str) -> Cluster:
        """The live cluster of environment ``name``."""
        return self.get_environment(name).live_cluster

    def put_environment(
        self,
        name: str,
        live_colour: str,
        clusters: Mapping[str, tuple[str, int]],
        actor: str | None = None,
    ) -> Environment:
        """Create the environment or replace its cluster addresses; ``clusters`` maps colour to
        ``(manager_address, docker_port)``. The live colour of an existing environment cannot change
        here (StateConflictError): use :meth:`switch`."""
        _check_name(name)
        for colour, spec in clusters.items():
            if not isinstance(spec, tuple | list) or len(spec) != 2:
                raise ConfigError(f"cluster {colour} must be given as (manager_address, docker_port)")
        body: dict[str, Any] = {
            "live_colour": live_colour,
            "clusters": {
                colour: {"manager_address": spec[0], "docker_port": spec[1]} for colour, spec in clusters.items()
            },
        }
        if actor is not None:
            body["actor"] = actor
        _, data = self._call("PUT", f"/v1/environments/{name}", (200, 201), environment=name, body=body, write=True)
        return parse_environment(data, name)

    def switch(
        self,
        name: str,
        expected_live: str,
        to: str,
        actor: str | None = None,
        reason: str | None = None,
        job_url: str | None = None,
    ) -> Environment:
        """Atomically make ``to`` live if ``expected_live`` still is; StateConflictError if not.
        ``job_url`` (the CI job) is kept in the ``switched`` history event."""
        _check_name(name)
        body: dict[str, Any] = {"expected_live": expected_live, "to": to}
        if actor is not None:
            body["actor"] = actor
        if reason is not None:
            body["reason"] = reason
        if job_url is not None:
            body["job_url"] = job_url
        _, data = self._call("POST", f"/v1/environments/{name}/switch", (200,), environment=name, body=body, write=True)
        env = parse_environment(data, name)
        if env.live_colour != to:
            _Checker(name, "").fail(f"live_colour is {env.live_colour} after switching to {to}")
        return env

    def record_deployment(
        self,
        name: str,
        *,
        colour: str,
        stack: str,
        services: Sequence[Mapping[str, Any]],
        compose: Sequence[Mapping[str, str]],
        result: str,
        actor: str,
        job_url: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> int:
        """Record a deployment (``services``: ``{name, image, replicas}``; ``compose``:
        ``{file, content}``; ``options``: ``{resolve_image: always|changed|never,
        with_registry_auth: bool, prune: bool}``, returned as they were by :meth:`deployments`);
        when ``result == "succeeded"`` the services are merged into the stack. Returns the
        deployment id."""
        _check_name(name)
        body: dict[str, Any] = {
            "colour": colour,
            "stack": stack,
            "services": [dict(s) for s in services],
            "compose": [dict(c) for c in compose],
            "result": result,
            "actor": actor,
        }
        if job_url is not None:
            body["job_url"] = job_url
        if options is not None:
            body["options"] = dict(options)
        _, data = self._call(
            "POST", f"/v1/environments/{name}/deployments", (201,), environment=name, body=body, write=True
        )
        check = _Checker(name, "")
        return check.integer(check.obj(data, "answer"), "id", "", 1, 2**63 - 1, "a deployment id")

    def deployments(
        self,
        name: str,
        colour: str | None = None,
        stack: str | None = None,
        result: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """Recorded deployments of ``name``, newest first (ids decrease), optionally filtered by
        colour, stack and result (e.g. ``"succeeded"``). Each has ``id`` and ``at``, and ``options``
        when it was recorded with them."""
        _check_name(name)
        params: dict[str, Any] = {"limit": limit}
        if colour is not None:
            params["colour"] = colour
        if stack is not None:
            params["stack"] = stack
        if result is not None:
            params["result"] = result
        _, data = self._call("GET", f"/v1/environments/{name}/deployments", (200,), environment=name, params=params)
        check = _Checker(name, "")
        items = self._list_of_objects(check, data, "deployments")
        previous = None
        for index, item in enumerate(items):
            where = f"deployments[{index}]."
            ident = check.integer(item, "id", where, 1, 2**63 - 1, "a deployment id")
            if previous is not None and ident >= previous:
                check.fail(f"{where}id {ident} is not below the one before it ({previous}): not newest first")
            previous = ident
            check.timestamp(item, "at", where)
            check.text(item, "result", where)
            if result is not None and item["result"] != result:
                check.fail(f"{where}result is {_show(item['result'])} although only {result!r} was asked for")
            if item.get("options") is not None:
                check.obj(item["options"], f"{where}options")
        return items

    def history(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        """The events of ``name``, newest first."""
        _check_name(name)
        _, data = self._call(
            "GET", f"/v1/environments/{name}/history", (200,), environment=name, params={"limit": limit}
        )
        return self._list_of_objects(_Checker(name, ""), data, "events")

    # ---- the environment's lock

    def _lock_held(self, name: str) -> Callable[[requests.Response], DeployerError]:
        def conflict(response: requests.Response) -> DeployerError:
            check = _Checker(name, "")
            try:
                data = json.loads(response.content)
            except ValueError:
                check.fail("answer to a lock conflict (HTTP 409) is not JSON")
            holder = parse_lock(check, check.get(check.obj(data, "answer"), "lock", ""))
            if holder is None:
                check.fail("lock is null in a lock conflict (HTTP 409)")
            return LockHeldError(self._error_message(response, limit=1000), holder=holder)

        return conflict

    def lock_status(self, name: str) -> Lock | None:
        """The live lock of ``name``, or None when nobody holds it (an expired lock is None)."""
        _check_name(name)
        _, data = self._call("GET", f"/v1/environments/{name}/lock", (200,), environment=name)
        check = _Checker(name, "")
        return parse_lock(check, check.get(check.obj(data, "answer"), "lock", ""))

    def acquire_lock(
        self,
        name: str,
        *,
        owner: str,
        purpose: str,
        ttl: float,
        actor: str | None = None,
        job_url: str | None = None,
    ) -> Lock:
        """Take the lock of ``name`` for ``ttl`` seconds, or renew it when ``owner`` holds it
        already (so retrying is safe, and a heartbeat is the same call). LockHeldError (exit 4),
        with ``.holder``, when somebody else holds it."""
        _check_name(name)
        body: dict[str, Any] = {"owner": owner, "purpose": purpose, "ttl_seconds": ttl}
        if actor is not None:
            body["actor"] = actor
        if job_url is not None:
            body["job_url"] = job_url
        _, data = self._call(
            "POST",
            f"/v1/environments/{name}/lock",
            (200,),
            environment=name,
            body=body,
            write=True,
            idempotent=True,  # the same owner renews: a retry after a lost answer is harmless
            on_conflict=self._lock_held(name),
        )
        check = _Checker(name, "")
        answer = check.obj(data, "answer")
        if check.get(answer, "acquired", "") is not True:
            check.fail(f"acquired is {_show(answer['acquired'])}, expected true")
        lock = parse_lock(check, check.get(answer, "lock", ""))
        if lock is None:
            check.fail("lock is null although it was acquired")
        if lock.owner != owner:
            check.fail(f"lock.owner is {_show(lock.owner)} after acquiring it as {_show(owner)}")
        return lock

    def release_lock(
        self, name: str, *, owner: str | None = None, force: bool = False, actor: str | None = None
    ) -> bool:
        """Release the lock of ``name``: the own lock with ``owner``, or anybody's with ``force``
        (exactly one of the two). True when a live lock was released, False when there was none;
        LockHeldError when ``owner`` is not the holder. ``actor`` is recorded in the history."""
        _check_name(name)
        if (owner is None) == (not force):
            raise ConfigError("release_lock needs exactly one of owner=... and force=True")
        params: dict[str, Any] = {"owner": owner} if owner is not None else {"force": "true"}
        if actor is not None:
            params["actor"] = actor
        _, data = self._call(
            "DELETE",
            f"/v1/environments/{name}/lock",
            (200,),
            environment=name,
            params=params,
            write=True,
            on_conflict=self._lock_held(name),
        )
        check = _Checker(name, "")
        answer = check.obj(data, "answer")
        released = check.get(answer, "released", "")
        if not isinstance(released, bool):
            check.fail(f"released {_show(released)} is not true or false")
        lock = parse_lock(check, check.get(answer, "lock", ""))
        if released != (lock is not None):
            check.fail(f"released is {str(released).lower()} but lock is {'null' if lock is None else 'set'}")
        if lock is not None and owner is not None and lock.owner != owner:
            check.fail(f"lock.owner is {_show(lock.owner)} after releasing it as {_show(owner)}")
        return released

    # ---- the audit trail

    def record_event(
        self,
        name: str,
        *,
        kind: str,
        actor: str,
        result: str,
        detail: Mapping[str, Any],
        job_url: str | None = None,
    ) -> int:
        """Add a ``deploy``, ``rollback`` or ``switch`` outcome to the history of ``name``;
        ``detail`` (a JSON object of at most 64 KiB, without ``revision``, ``result`` or
        ``job_url``) is kept with ``result`` and ``job_url``. Returns the event id. Not retried
        once sent: a lost answer may mean it was recorded."""
        _check_name(name)
        if kind not in AUDIT_KINDS:
            raise ConfigError(f"event kind must be one of {', '.join(AUDIT_KINDS)}, not {_show(kind)}")
        try:
            plain = json.loads(json.dumps(dict(detail), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the detail of a {kind} event is not JSON: {exc}") from None
        body: dict[str, Any] = {"kind": kind, "actor": actor, "result": result, "detail": plain}
        if job_url is not None:
            body["job_url"] = job_url
        _, data = self._call("POST", f"/v1/environments/{name}/events", (201,), environment=name, body=body, write=True)
        check = _Checker(name, "")
        return check.integer(check.obj(data, "answer"), "id", "", 1, 2**63 - 1, "an event id")
