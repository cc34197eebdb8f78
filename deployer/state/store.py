"""The environment-state store: one function per operation, each its own SQLite transaction.

Takes validated values (``deployer.state.validation``), returns what the API shows, and raises
:class:`StoreError` when the data says no (unknown environment, lost compare-and-set, lock held).
Writes run in ``BEGIN IMMEDIATE`` transactions so that read-check-write sequences are atomic across
threads and processes, and every write appends its history event in the same transaction. No HTTP.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from autocore.names import is_valid
from autocore.text import display
from deployer.state.contract import IDEMPOTENCY_TTL, NAME_RE, TIMESTAMP_FORMAT
from deployer.state.schema import transaction
from deployer.state.validation import (
    AuditEvent,
    DeploymentFilter,
    DeploymentRecord,
    EnvironmentSpec,
    LockRequest,
    ReleaseRequest,
    SwitchRequest,
    show,
)

Clock = Callable[[], float]  # seconds since the epoch


class StoreError(Exception):
    """The data refuses the operation; ``message`` is one line for the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownEnvironment(StoreError):
    """No environment of that name (a 404)."""


class Conflict(StoreError):
    """A compare-and-set lost, or a PUT tried to change the live colour (a 409)."""


class LockHeld(Conflict):
    """Somebody else holds the lock; ``lock`` is it, as the API shows it (a 409 naming the holder)."""

    def __init__(self, message: str, lock: dict[str, Any]) -> None:
        super().__init__(message)
        self.lock = lock


def stamp(seconds: float) -> str:
    """Seconds since the epoch as a UTC timestamp, e.g. ``2026-11-25T06:30:00Z`` (truncated)."""
    return datetime.fromtimestamp(math.floor(seconds), UTC).strftime(TIMESTAMP_FORMAT)


# --------------------------------------------------------------------------------------------------
# Environments


def check(conn: sqlite3.Connection) -> None:
    """Raise if the database cannot be read (the health check)."""
    conn.execute("SELECT 1 FROM environments LIMIT 1").fetchall()


def list_environments(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT name, live_colour, revision FROM environments ORDER BY name")
    return [{"name": n, "live_colour": c, "revision": r} for n, c, r in rows.fetchall()]


def get_environment(conn: sqlite3.Connection, name: str) -> dict[str, Any]:
    with transaction(conn, write=False):  # one consistent snapshot across the SELECTs
        return _require_environment(conn, name)


def put_environment(conn: sqlite3.Connection, name: str, spec: EnvironmentSpec, at: str) -> tuple[bool, dict]:
    """Create the environment or replace its cluster addresses; returns (created, environment)."""
    new_specs = {c: _spec(a, p, spec.other_managers.get(c, ())) for c, (a, p) in spec.clusters.items()}
    with transaction(conn, write=True):
        existing = _load_environment(conn, name)
        if existing is None:
            conn.execute(
                "INSERT INTO environments (name, live_colour, revision, updated_at) VALUES (?, ?, 1, ?)",
                (name, spec.live_colour, at),
            )
            created, kind, revision = True, "created", 1
            detail: dict[str, Any] = {"live_colour": spec.live_colour, "clusters": new_specs}
        else:
            if existing["live_colour"] != spec.live_colour:
                raise Conflict(
                    f"live colour of {name!r} is {existing['live_colour']}, not {spec.live_colour}: "
                    "the live colour only changes by switch; use the switch endpoint"
                )
            revision = _bump(conn, name, at)
            created, kind = False, "updated"
            detail = {"clusters": new_specs, "previous_clusters": _cluster_specs(existing)}
        conn.executemany(
            "INSERT INTO clusters (environment, colour, manager_address, docker_port, other_managers)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (environment, colour) DO UPDATE SET"
            " manager_address = excluded.manager_address, docker_port = excluded.docker_port,"
            " other_managers = excluded.other_managers",
            [
                (name, colour, a, p, json.dumps(list(spec.other_managers.get(colour, ()))))
                for colour, (a, p) in spec.clusters.items()
            ],
        )
        _append_event(conn, name, at, kind, spec.actor, {"revision": revision, **detail})
        env = _load_environment(conn, name)
    return created, env  # type: ignore[return-value]


def switch(conn: sqlite3.Connection, name: str, request: SwitchRequest, at: str) -> dict[str, Any]:
    """Make ``request.to`` live if ``request.expected_live`` still is; Conflict if not."""
    expected = request.expected_live
    with transaction(conn, write=True):  # BEGIN IMMEDIATE: the check and the update are atomic
        env = _require_environment(conn, name)
        if env["live_colour"] != expected:
            raise Conflict(
                f"live colour is {env['live_colour']}, not {expected}: someone switched first; re-read and retry"
            )
        revision = _bump(conn, name, at, live_colour=request.to)
        detail = {"revision": revision, "from": expected, "to": request.to, "reason": request.reason}
        if request.job_url is not None:
            detail["job_url"] = request.job_url
        _append_event(conn, name, at, "switched", request.actor, detail)
        env = _load_environment(conn, name)
    return env  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# Deployments and history


def record_deployment(conn: sqlite3.Connection, name: str, record: DeploymentRecord, at: str) -> int:
    """Record a deployment; a succeeded one also updates its stack. Returns the deployment id."""
    with transaction(conn, write=True):
        _require_environment(conn, name)
        cursor = conn.execute(
            "INSERT INTO deployments (environment, at, colour, stack, services, compose, result, actor,"
            " job_url, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                at,
                record.colour,
                record.stack,
                json.dumps(record.services),
                json.dumps(record.compose),
                record.result,
                record.actor,
                record.job_url,
                None if record.options is None else json.dumps(record.options, sort_keys=True),
            ),
        )
        deployment_id: int = cursor.lastrowid  # type: ignore[assignment]
        if record.result == "succeeded":
            row = conn.execute(
                "SELECT services FROM stacks WHERE environment = ? AND colour = ? AND name = ?",
                (name, record.colour, record.stack),
            ).fetchone()
            # A shared stack: replace the services deployed now, keep everybody else's.
            merged = {s["name"]: s for s in (json.loads(row[0]) if row else [])}
            merged.update({s["name"]: s for s in record.services})
            conn.execute(
                "INSERT INTO stacks (environment, colour, name, deployed_at, deployed_by, services)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (environment, colour, name) DO UPDATE SET"
                " deployed_at = excluded.deployed_at, deployed_by = excluded.deployed_by,"
                " services = excluded.services",
                (name, record.colour, record.stack, at, record.actor, json.dumps([merged[k] for k in sorted(merged)])),
            )
        revision = _bump(conn, name, at)
        detail = {
            "revision": revision,
            "deployment_id": deployment_id,
            "colour": record.colour,
            "stack": record.stack,
            "result": record.result,
            "services": [s["name"] for s in record.services],
        }
        _append_event(conn, name, at, "deployed", record.actor, detail)
    return deployment_id


_DEPLOYMENT_KEYS = ("id", "at", "colour", "stack", "services", "compose", "result", "actor", "job_url", "options")


def list_deployments(conn: sqlite3.Connection, name: str, wanted: DeploymentFilter) -> list[dict[str, Any]]:
    """The deployments of ``name`` that match ``wanted``, newest first."""
    sql = f"SELECT {', '.join(_DEPLOYMENT_KEYS)} FROM deployments WHERE environment = ?"
    args: list[Any] = [name]
    for column, value in (("colour", wanted.colour), ("stack", wanted.stack), ("result", wanted.result)):
        if value is not None:
            sql += f" AND {column} = ?"
            args.append(value)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(wanted.limit)
    with transaction(conn, write=False):
        _require_environment(conn, name)
        rows = conn.execute(sql, args).fetchall()
    deployments = []
    for row in rows:
        item = dict(zip(_DEPLOYMENT_KEYS, row, strict=True))
        item["services"] = json.loads(item["services"])
        item["compose"] = json.loads(item["compose"])
        if item["options"] is None:
            del item["options"]  # recorded without options (or before they existed)
        else:
            item["options"] = json.loads(item["options"])
        deployments.append(item)
    return deployments


def history(conn: sqlite3.Connection, name: str, limit: int) -> list[dict[str, Any]]:
    """The events of ``name``, newest first."""
    with transaction(conn, write=False):
        _require_environment(conn, name)
        rows = conn.execute(
            "SELECT id, at, kind, actor, detail FROM events WHERE environment = ? ORDER BY id DESC LIMIT ?",
            (name, limit),
        ).fetchall()
    return [
        {"id": i, "at": at, "kind": kind, "actor": actor, "detail": json.loads(detail)}
        for i, at, kind, actor, detail in rows
    ]


def record_event(conn: sqlite3.Connection, name: str, event: AuditEvent, at: str) -> int:
    """Append an audit event (deploy, rollback, switch) to the history; returns its id."""
    with transaction(conn, write=True):
        _require_environment(conn, name)
        full = {**event.detail, "revision": _revision(conn, name), "result": event.result, "job_url": event.job_url}
        return _append_event(conn, name, at, event.kind, event.actor, full)


# --------------------------------------------------------------------------------------------------
# The lock; the server's clock decides when it expires


def get_lock(conn: sqlite3.Connection, name: str, now: float) -> dict[str, Any] | None:
    """The live lock of ``name`` as the API shows it, or None (an expired lock is None)."""
    with transaction(conn, write=False):
        _require_environment(conn, name)
        row = _lock_row(conn, name)
    return _lock_view(row, now) if row is not None and row["expires_at"] > now else None


def acquire_lock(conn: sqlite3.Connection, name: str, request: LockRequest, clock: Clock) -> dict[str, Any]:
    """Take the lock, or renew it for the same owner; LockHeld when somebody else holds it."""
    owner, ttl = request.owner, request.ttl
    with transaction(conn, write=True):  # BEGIN IMMEDIATE: of concurrent acquirers exactly one wins
        now = clock()  # read inside the transaction: writers are serialised
        _require_environment(conn, name)
        row = _lock_row(conn, name)
        if row is not None and row["expires_at"] > now:
            if row["owner"] != owner:
                raise _lock_held(name, row, now)
            row["expires_at"] = now + ttl  # renewal: same owner, acquired_at kept, no event
            conn.execute("UPDATE locks SET expires_at = ? WHERE environment = ?", (row["expires_at"], name))
            return _lock_view(row, now)
        row_new = {
            "owner": owner,
            "purpose": request.purpose,
            "actor": request.actor,
            "job_url": request.job_url,
            "acquired_at": now,
            "expires_at": now + ttl,
        }
        conn.execute(
            "INSERT INTO locks (environment, owner, purpose, actor, job_url, acquired_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (environment) DO UPDATE SET owner = excluded.owner,"
            " purpose = excluded.purpose, actor = excluded.actor, job_url = excluded.job_url,"
            " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
            (name, owner, request.purpose, request.actor, request.job_url, now, now + ttl),
        )
        lock = _lock_view(row_new, now)
        detail: dict[str, Any] = {
            "revision": _revision(conn, name),
            "owner": owner,
            "purpose": request.purpose,
            "ttl_seconds": ttl,
            "expires_at": lock["expires_at"],
            "job_url": request.job_url,
        }
        if row is not None:
            detail["took_over_expired_from"] = row["owner"]
        _append_event(conn, name, stamp(now), "locked", request.actor, detail)
    return lock


def release_lock(conn: sqlite3.Connection, name: str, request: ReleaseRequest, clock: Clock) -> dict[str, Any] | None:
    """Release the lock (the own one, or anybody's when forced); returns it, or None when none was live."""
    owner = request.owner
    with transaction(conn, write=True):
        now = clock()
        _require_environment(conn, name)
        row = _lock_row(conn, name)
        if row is None or row["expires_at"] <= now:
            if row is not None:  # tidy up the expired lock; nothing was held, so no event
                conn.execute("DELETE FROM locks WHERE environment = ?", (name,))
            return None
        if owner is not None and row["owner"] != owner:
            raise _lock_held(name, row, now)
        conn.execute("DELETE FROM locks WHERE environment = ?", (name,))
        lock = _lock_view(row, now)
        detail = {
            "revision": _revision(conn, name),
            "owner": row["owner"],
            "purpose": row["purpose"],
            "held_seconds": round(now - row["acquired_at"], 3),
            "job_url": row["job_url"],
        }
        if owner is not None:
            _append_event(conn, name, stamp(now), "unlocked", request.actor or row["actor"], detail)
        else:  # the actor is whoever forced it (null when not given), not the holder
            _append_event(conn, name, stamp(now), "lock_forced", request.actor, detail)
    return lock


# --------------------------------------------------------------------------------------------------
# Idempotent writes: the stored answer of a write sent with an Idempotency-Key; callers hold the
# write transaction, so that a write and its stored answer are committed (or rolled back) together


def recall(conn: sqlite3.Connection, key: str, now: float) -> tuple[str, int, dict[str, Any]] | None:
    """``(fingerprint, status, body)`` stored under ``key`` within the last IDEMPOTENCY_TTL seconds, or None."""
    row = conn.execute(
        "SELECT fingerprint, status, body FROM idempotency_keys WHERE key = ? AND created_at >= ?",
        (key, now - IDEMPOTENCY_TTL),
    ).fetchone()
    return None if row is None else (row[0], row[1], json.loads(row[2]))


def remember(
    conn: sqlite3.Connection,
    key: str,
    fingerprint: str,
    status: int,
    body: dict[str, Any],
    now: float,
    *,
    purge: bool = True,
) -> None:
    """Store the answer of a write under ``key``; with ``purge``, forget answers older than IDEMPOTENCY_TTL."""
    if purge:
        conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (now - IDEMPOTENCY_TTL,))
    conn.execute(
        "INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?)",
        (key, fingerprint, status, json.dumps(body, separators=(",", ":")), now),
    )


# --------------------------------------------------------------------------------------------------
# Reads and writes the operations share; callers hold the transaction


def _load_environment(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT name, live_colour, revision, updated_at FROM environments WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    live_colour = row[1]
    clusters: dict[str, dict[str, Any]] = {}
    for colour, address, port, others in conn.execute(
        "SELECT colour, manager_address, docker_port, other_managers FROM clusters WHERE environment = ?"
        " ORDER BY colour",
        (name,),
    ):
        clusters[colour] = {**_spec(address, port, json.loads(others)), "live": colour == live_colour, "stacks": []}
    for colour, stack, deployed_at, deployed_by, services in conn.execute(
        "SELECT colour, name, deployed_at, deployed_by, services FROM stacks WHERE environment = ? ORDER BY name",
        (name,),
    ):
        clusters[colour]["stacks"].append(
            {"name": stack, "deployed_at": deployed_at, "deployed_by": deployed_by, "services": json.loads(services)}
        )
    return {"name": row[0], "live_colour": live_colour, "revision": row[2], "updated_at": row[3], "clusters": clusters}


def _require_environment(conn: sqlite3.Connection, name: str) -> dict[str, Any]:
    env = _load_environment(conn, name) if is_valid(NAME_RE, name) else None
    if env is None:
        raise UnknownEnvironment(f"unknown environment {show(name)}")
    return env


def _spec(address: str, port: int, others: Any) -> dict[str, Any]:
    """A cluster's ClusterSpec as answers and events show it: ``other_managers`` only when it lists any, so
    that an environment without them reads exactly as before version 3."""
    spec: dict[str, Any] = {"manager_address": address, "docker_port": port}
    if others:
        spec["other_managers"] = list(others)
    return spec


def _cluster_specs(env: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        colour: _spec(c["manager_address"], c["docker_port"], c.get("other_managers", ()))
        for colour, c in env["clusters"].items()
    }


def _append_event(
    conn: sqlite3.Connection, name: str, at: str, kind: str, actor: str | None, detail: dict[str, Any]
) -> int:
    cursor = conn.execute(
        "INSERT INTO events (environment, at, kind, actor, detail) VALUES (?, ?, ?, ?, ?)",
        (name, at, kind, actor, json.dumps(detail, sort_keys=True)),
    )
    return cursor.lastrowid  # type: ignore[return-value]


def _bump(conn: sqlite3.Connection, name: str, at: str, live_colour: str | None = None) -> int:
    """Count a write: revision + 1 and updated_at (and the live colour, for a switch); the new revision."""
    if live_colour is None:
        conn.execute("UPDATE environments SET revision = revision + 1, updated_at = ? WHERE name = ?", (at, name))
    else:
        conn.execute(
            "UPDATE environments SET revision = revision + 1, updated_at = ?, live_colour = ? WHERE name = ?",
            (at, live_colour, name),
        )
    return _revision(conn, name)


def _revision(conn: sqlite3.Connection, name: str) -> int:
    return conn.execute("SELECT revision FROM environments WHERE name = ?", (name,)).fetchone()[0]


_LOCK_COLUMNS = ("owner", "purpose", "actor", "job_url", "acquired_at", "expires_at")


def _lock_row(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    """The stored lock of ``name`` (live or expired), or None."""
    row = conn.execute(f"SELECT {', '.join(_LOCK_COLUMNS)} FROM locks WHERE environment = ?", (name,)).fetchone()
    return None if row is None else dict(zip(_LOCK_COLUMNS, row, strict=True))


def _lock_view(row: dict[str, Any], now: float) -> dict[str, Any]:
    """A stored lock as the API shows it; ``expires_at`` rounds up so that "until T" holds."""
    return {
        "owner": row["owner"],
        "purpose": row["purpose"],
        "actor": row["actor"],
        "job_url": row["job_url"],
        "acquired_at": stamp(row["acquired_at"]),
        "expires_at": stamp(math.ceil(row["expires_at"])),
        "expires_in": round(max(0.0, row["expires_at"] - now), 3),
    }


def _lock_held(name: str, row: dict[str, Any], now: float) -> LockHeld:
    """The conflict for a lock held by somebody else: one line naming the holder, plus the lock."""
    lock = _lock_view(row, now)
    who = [f"actor {display(lock['actor'], 60)}"] if lock["actor"] else []
    if lock["job_url"]:
        who.append(f"job {display(lock['job_url'], 120)}")
    by = f" ({', '.join(who)})" if who else ""
    message = (
        f"environment {name} is locked by {display(lock['owner'], 80)} for {display(lock['purpose'], 80)}"
        f" until {lock['expires_at']}{by}: wait or run auto-deploy lock release --env {name}"
    )
    return LockHeld(message, lock)
