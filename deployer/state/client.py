"""Client library of the environment-state service (see ``contract.yaml``): its API, one method per endpoint.

Strict on purpose: answers are validated (``answers``) into frozen dataclasses (``model``) before
anybody acts on them; the transport underneath (``transport``) verifies TLS, retries within bounds,
maps failures onto the exceptions of ``deployer.errors`` and never shows the token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

from autocore.errors import ToolkitError
from autocore.names import is_valid
from deployer.errors import ConfigError, DeployerError, LockHeldError, UnknownEnvironmentError
from deployer.state.answers import Checker, list_of_objects, parse_environment, parse_events, parse_lock, show
from deployer.state.contract import AUDIT_KINDS, COLOURS, DEFAULT_LIMIT, MAX_ID, NAME_RE, other_colour
from deployer.state.model import Cluster, Environment, Lock, Service, ServiceDocs, SkippedService, Stack
from deployer.state.transport import Transport

# The names callers import from here, wherever they live now.
__all__ = [
    "AUDIT_KINDS",
    "COLOURS",
    "Cluster",
    "Environment",
    "Lock",
    "Service",
    "ServiceDocs",
    "SkippedService",
    "Stack",
    "StateClient",
    "other_colour",
    "parse_environment",
    "parse_lock",
]


def _check_name(name: str) -> str:
    if not is_valid(NAME_RE, name):
        raise ConfigError(f"invalid environment name {show(name)}: use lowercase letters, digits and '-' (at most 63)")
    return name


class StateClient(Transport):
    """Client of the environment-state service.

    ``session`` is the transport seam (a ``requests.Session``; the client mounts its deadline
    adapter on it for the service's URL); ``sleep`` is called between retries with the backoff in
    seconds. Reads are retried on connection errors, timeouts and 5xx. Every write carries an
    Idempotency-Key, the same on each of its attempts, so writes are also retried after timeouts,
    dropped connections and 502/503/504 (the service answers a repeat from the stored answer); a POST
    is not retried after a 500. Nothing is retried on 4xx, TLS failures, an answer over
    ``max_answer`` bytes, or once the call's ``deadline`` has passed.
    """

    def _unknown_environment(self, name: str) -> UnknownEnvironmentError:
        try:
            known = self.list_environments()
        except DeployerError:
            return super()._unknown_environment(name)
        if not known:
            return UnknownEnvironmentError(f"unknown environment '{name}': no environments are defined yet")
        return UnknownEnvironmentError(f"unknown environment '{name}': known environments are {', '.join(known)}")

    def health(self) -> dict[str, Any]:
        """``GET /v1/health``; returns ``{"status": "ok"}`` or raises."""
        _, data = self._call("GET", "/v1/health", (200,))
        check = Checker(None, "GET /v1/health")
        if check.obj(data, "answer").get("status") != "ok":
            check.fail(f"status is {show(data.get('status'))}, expected 'ok'")
        return data

    def list_environments(self) -> list[str]:
        """The names of all environments, sorted."""
        _, data = self._call("GET", "/v1/environments", (200,))
        check = Checker(None, "GET /v1/environments")
        names = []
        for index, item in enumerate(list_of_objects(check, data, "environments")):
            name = check.text(item, "name", f"environments[{index}].")
            if not is_valid(NAME_RE, name):
                check.fail(f"environments[{index}].name {show(name)} is not an environment name")
            names.append(name)
        return sorted(names)

    def get_environment(self, name: str, *, skipped: list[SkippedService] | None = None) -> Environment:
        """The environment ``name``, validated; UnknownEnvironmentError if the service lacks it.

        With ``skipped``, a service that breaks the contract is left out and listed there, instead of the
        whole environment being refused (for readers such as the docs portal, where one bad name must cost
        one page); the deployer never passes it."""
        _check_name(name)
        _, data = self._call("GET", f"/v1/environments/{name}", (200,), environment=name)
        return parse_environment(data, name, skipped)

    def resolve(self, name: str) -> Cluster:
        """The live cluster of environment ``name``."""
        return self.get_environment(name).live_cluster

    def put_environment(
        self,
        name: str,
        live_colour: str,
        clusters: Mapping[str, tuple[str, int] | tuple[str, int, Sequence[str]]],
        actor: str | None = None,
    ) -> Environment:
        """Create the environment or replace its cluster addresses; ``clusters`` maps colour to
        ``(manager_address, docker_port)``, or ``(manager_address, docker_port, other_managers)`` for a cluster
        with several Swarm managers. The live colour of an existing environment cannot change here
        (StateConflictError): use :meth:`switch`."""
        _check_name(name)
        specs: dict[str, dict[str, Any]] = {}
        for colour, spec in clusters.items():
            if not isinstance(spec, tuple | list) or len(spec) not in (2, 3):
                raise ConfigError(f"cluster {colour} must be given as (manager_address, docker_port[, other_managers])")
            specs[colour] = {"manager_address": spec[0], "docker_port": spec[1]}
            if len(spec) == 3 and spec[2]:
                specs[colour]["other_managers"] = list(spec[2])
        body: dict[str, Any] = {"live_colour": live_colour, "clusters": specs}
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
            Checker(name, "").fail(f"live_colour is {env.live_colour} after switching to {to}")
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
        deployment id.

        Retried until the call's deadline (AUTO_STATE_DEADLINE), not AUTO_STATE_RETRIES times: the stack has
        changed already, and a record lost to a short outage of the service is a replay lost to the next switch.
        The Idempotency-Key keeps the retries from recording it twice."""
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
            "POST",
            f"/v1/environments/{name}/deployments",
            (201,),
            environment=name,
            body=body,
            write=True,
            until_deadline=True,
        )
        check = Checker(name, "")
        return check.integer(check.obj(data, "answer"), "id", "", 1, MAX_ID, "a deployment id")

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
        check = Checker(name, "")
        items = list_of_objects(check, data, "deployments")
        previous = None
        for index, item in enumerate(items):
            where = f"deployments[{index}]."
            ident = check.integer(item, "id", where, 1, MAX_ID, "a deployment id")
            if previous is not None and ident >= previous:
                check.fail(f"{where}id {ident} is not below the one before it ({previous}): not newest first")
            previous = ident
            check.timestamp(item, "at", where)
            check.text(item, "result", where)
            if result is not None and item["result"] != result:
                check.fail(f"{where}result is {show(item['result'])} although only {result!r} was asked for")
            if item.get("options") is not None:
                check.obj(item["options"], f"{where}options")
        return items

    def history(self, name: str, limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
        """The events of ``name``, newest first; each with ``id``, ``at``, ``kind``, ``actor`` and ``detail``."""
        _check_name(name)
        _, data = self._call(
            "GET", f"/v1/environments/{name}/history", (200,), environment=name, params={"limit": limit}
        )
        return parse_events(Checker(name, ""), data)

    # ---- the environment's lock

    def _lock_held(self, name: str) -> Callable[[requests.Response], DeployerError]:
        def conflict(response: requests.Response) -> DeployerError:
            check = Checker(name, "")
            try:
                data = self._decode(response.content)
            except (ValueError, ToolkitError):
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
        check = Checker(name, "")
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
        check = Checker(name, "")
        answer = check.obj(data, "answer")
        if check.get(answer, "acquired", "") is not True:
            check.fail(f"acquired is {show(answer['acquired'])}, expected true")
        lock = parse_lock(check, check.get(answer, "lock", ""))
        if lock is None:
            check.fail("lock is null although it was acquired")
        if lock.owner != owner:
            check.fail(f"lock.owner is {show(lock.owner)} after acquiring it as {show(owner)}")
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
        check = Checker(name, "")
        answer = check.obj(data, "answer")
        released = check.get(answer, "released", "")
        if not isinstance(released, bool):
            check.fail(f"released {show(released)} is not true or false")
        lock = parse_lock(check, check.get(answer, "lock", ""))
        if released != (lock is not None):
            check.fail(f"released is {str(released).lower()} but lock is {'null' if lock is None else 'set'}")
        if lock is not None and owner is not None and lock.owner != owner:
            check.fail(f"lock.owner is {show(lock.owner)} after releasing it as {show(owner)}")
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
            raise ConfigError(f"event kind must be one of {', '.join(AUDIT_KINDS)}, not {show(kind)}")
        try:
            plain = json.loads(json.dumps(dict(detail), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the detail of a {kind} event is not JSON: {exc}") from None
        body: dict[str, Any] = {"kind": kind, "actor": actor, "result": result, "detail": plain}
        if job_url is not None:
            body["job_url"] = job_url
        _, data = self._call("POST", f"/v1/environments/{name}/events", (201,), environment=name, body=body, write=True)
        check = Checker(name, "")
        return check.integer(check.obj(data, "answer"), "id", "", 1, MAX_ID, "an event id")
