"""Audit events, deployment options, the result filter, the switch's job URL, and the migration of
a database created by the first release of the server."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import requests

from deployer.errors import ConfigError, InvalidStateError, StateUnavailableError, UnknownEnvironmentError
from deployer.state.client import StateClient
from deployer.state.server import SCHEMA_VERSION, init_db

WEB = [{"name": "web", "image": "auto-lab/web:1", "replicas": 2}]
COMPOSE = [{"file": "docker-compose.yml", "content": "services: {}\n"}]


def _deploy(client: StateClient, colour: str = "blue", result: str = "succeeded", **kwargs: Any) -> int:
    return client.record_deployment(
        "lab", colour=colour, stack="demo", services=WEB, compose=COMPOSE, result=result, actor="alice", **kwargs
    )


# ---- audit events


def test_events_are_recorded_and_listed_in_history(lab_env: StateClient) -> None:
    detail = {"stack": "demo", "colour": "green", "message": "3/3 converged", "services": [{"name": "web"}]}
    first = lab_env.record_event(
        "lab", kind="deploy", actor="alice", result="converged", detail=detail, job_url="https://ci.example/7"
    )
    second = lab_env.record_event("lab", kind="rollback", actor="bob", result="rolled_back", detail={})
    third = lab_env.record_event("lab", kind="switch", actor="carol", result="switched", detail={"to": "green"})
    assert first < second < third

    events = lab_env.history("lab", limit=3)
    assert [(e["id"], e["kind"], e["actor"]) for e in events] == [
        (third, "switch", "carol"),
        (second, "rollback", "bob"),
        (first, "deploy", "alice"),
    ]
    assert events[2]["detail"] == {**detail, "result": "converged", "job_url": "https://ci.example/7", "revision": 1}
    assert events[1]["detail"] == {"result": "rolled_back", "job_url": None, "revision": 1}
    assert lab_env.get_environment("lab").revision == 1  # audit events do not bump the revision


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "deployed"}, "kind must be one of deploy, rollback, switch, not 'deployed'"),
        ({"result": "Converged"}, "result 'Converged' does not match"),
        ({"result": "a" * 33}, "result must be a non-empty string of at most 32"),
        ({"actor": ""}, "actor must be a non-empty string"),
        ({"actor": None}, "actor must be a non-empty string"),
        ({"detail": []}, "detail must be a JSON object"),
        ({"detail": {"revision": 9}}, "detail must not contain 'revision'"),
        ({"detail": {"result": "x"}}, "detail must not contain 'result'"),
        ({"detail": {"job_url": "x"}}, "detail must not contain 'job_url'"),
        ({"detail": {"blob": "x" * 65536}}, "the limit is 65536"),
        ({"job_url": "a\nb"}, "job_url must not contain control characters"),
        ({"when": "now"}, "unknown field 'when'"),
    ],
)
def test_bad_events_are_400(lab_env: StateClient, overrides: dict[str, Any], message: str) -> None:
    body: dict[str, Any] = {"kind": "deploy", "actor": "alice", "result": "converged", "detail": {}}
    body.update(overrides)
    with pytest.raises(ConfigError, match=r"\(HTTP 400\)") as caught:
        lab_env._call("POST", "/v1/environments/lab/events", (201,), body=body, write=True)
    assert message in str(caught.value)
    assert [e["kind"] for e in lab_env.history("lab")] == ["created"]


def test_detail_up_to_64_kib_is_accepted(lab_env: StateClient) -> None:
    blob = "x" * (65536 - len('{"blob":""}'))
    lab_env.record_event("lab", kind="deploy", actor="alice", result="converged", detail={"blob": blob})
    assert len(lab_env.history("lab", limit=1)[0]["detail"]["blob"]) == len(blob)


def test_client_checks_the_event_before_sending(lab_env: StateClient) -> None:
    with pytest.raises(ConfigError, match="event kind must be one of deploy, rollback, switch"):
        lab_env.record_event("lab", kind="locked", actor="alice", result="x", detail={})
    with pytest.raises(ConfigError, match="is not JSON"):
        lab_env.record_event("lab", kind="deploy", actor="alice", result="x", detail={"at": object()})
    with pytest.raises(ConfigError, match="is not JSON"):
        lab_env.record_event("lab", kind="deploy", actor="alice", result="x", detail={"seconds": float("nan")})


def test_events_need_the_token(state: Any, lab_env: StateClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        answer = requests.post(
            f"{state.url}/v1/environments/lab/events",
            json={"kind": "deploy", "actor": "a", "result": "converged", "detail": {}},
            headers=headers,
            timeout=5,
        )
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(ConfigError, match="this needs a token"):
        state.client(token=None).record_event("lab", kind="deploy", actor="a", result="converged", detail={})


def test_event_for_an_unknown_environment(lab_env: StateClient) -> None:
    with pytest.raises(UnknownEnvironmentError, match="unknown environment 'prod'"):
        lab_env.record_event("prod", kind="deploy", actor="a", result="converged", detail={})


# ---- the switch's job URL


def test_switch_keeps_the_job_url(lab_env: StateClient) -> None:
    lab_env.switch("lab", "blue", "green", actor="bob", reason="release", job_url="https://ci.example/8")
    event = lab_env.history("lab", limit=1)[0]
    assert event["detail"] == {
        "revision": 2,
        "from": "blue",
        "to": "green",
        "reason": "release",
        "job_url": "https://ci.example/8",
    }


# ---- deployment options and the result filter


def test_options_round_trip(lab_env: StateClient) -> None:
    options = {"resolve_image": "changed", "with_registry_auth": True, "prune": False}
    with_options = _deploy(lab_env, options=options)
    without = _deploy(lab_env)
    partial = _deploy(lab_env, options={"prune": True})
    by_id = {d["id"]: d for d in lab_env.deployments("lab")}
    assert by_id[with_options]["options"] == options
    assert "options" not in by_id[without]
    assert by_id[partial]["options"] == {"prune": True}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"resolve_image": "sometimes"}, "options.resolve_image must be one of always, changed, never"),
        ({"prune": "yes"}, "options.prune must be true or false"),
        ({"with_registry_auth": 1}, "options.with_registry_auth must be true or false"),
        ({"detach": True}, "options has unknown field 'detach'"),
        ([], "options must be a JSON object"),
    ],
)
def test_bad_options_are_400(lab_env: StateClient, options: Any, message: str) -> None:
    body = {
        "colour": "blue",
        "stack": "demo",
        "services": WEB,
        "compose": [],
        "result": "succeeded",
        "actor": "alice",
        "options": options,
    }
    with pytest.raises(ConfigError, match=r"\(HTTP 400\)") as caught:
        lab_env._call("POST", "/v1/environments/lab/deployments", (201,), body=body, write=True)
    assert message in str(caught.value)
    assert lab_env.deployments("lab") == []


def test_result_filter_and_monotonic_ids(lab_env: StateClient, state: Any) -> None:
    a = _deploy(lab_env, "green")
    b = _deploy(lab_env, "green", result="failed")
    c = _deploy(lab_env, "blue")
    d = _deploy(lab_env, "green", result="rolled_back")
    e = _deploy(lab_env, "green")
    assert a < b < c < d < e
    assert [x["id"] for x in lab_env.deployments("lab", result="succeeded")] == [e, c, a]
    assert [x["id"] for x in lab_env.deployments("lab", colour="green", result="succeeded")] == [e, a]
    assert [x["id"] for x in lab_env.deployments("lab", colour="green", result="succeeded", limit=1)] == [e]
    assert [x["id"] for x in lab_env.deployments("lab", result="failed")] == [b]
    assert lab_env.deployments("lab", result="timed_out") == []
    assert all(x["at"].endswith("Z") for x in lab_env.deployments("lab"))
    answer = requests.get(f"{state.url}/v1/environments/lab/deployments?result=Bad!", timeout=5)
    assert answer.status_code == 400 and "result 'Bad!' does not match" in answer.json()["error"]


def test_deployments_answers_are_checked(scripted_server: Any) -> None:
    good = {"id": 2, "at": "2026-11-25T06:30:00Z", "result": "succeeded"}
    cases = [
        ([{**good, "id": 0}], "deployments[0].id 0 is not a deployment id"),
        ([{**good, "at": "yesterday"}], "deployments[0].at 'yesterday' is not a UTC timestamp"),
        ([good, {**good, "id": 3}], "deployments[1].id 3 is not below the one before it (2)"),
        ([{**good, "options": "fast"}], "deployments[0].options is not an object"),
        ([{**good, "result": "failed"}], "result is 'failed' although only 'succeeded' was asked for"),
    ]
    for deployments, message in cases:
        server = scripted_server([(200, {"deployments": deployments})])
        client = StateClient(server.url, retries=0)
        with pytest.raises(InvalidStateError, match=re.escape(message)):
            client.deployments("lab", result="succeeded")


def test_record_deployment_is_still_not_retried(scripted_server: Any, token: str) -> None:
    server = scripted_server([(500, {"error": "boom"}), (201, {"id": 1})])
    client = StateClient(server.url, token=token, retries=2, sleep=lambda _s: None)
    with pytest.raises(StateUnavailableError, match="not retried"):
        _deploy(client, options={"prune": True})
    assert len(server.requests) == 1


# ---- migration of a database created by the first release


# The schema exactly as the first release of the server created it (PRAGMA user_version = 1).
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS environments (
    name        TEXT PRIMARY KEY,
    live_colour TEXT NOT NULL CHECK (live_colour IN ('blue', 'green')),
    revision    INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clusters (
    environment     TEXT NOT NULL REFERENCES environments(name),
    colour          TEXT NOT NULL CHECK (colour IN ('blue', 'green')),
    manager_address TEXT NOT NULL,
    docker_port     INTEGER NOT NULL,
    PRIMARY KEY (environment, colour)
);
CREATE TABLE IF NOT EXISTS stacks (
    environment TEXT NOT NULL REFERENCES environments(name),
    colour      TEXT NOT NULL CHECK (colour IN ('blue', 'green')),
    name        TEXT NOT NULL,
    deployed_at TEXT NOT NULL,
    deployed_by TEXT NOT NULL,
    services    TEXT NOT NULL,  -- JSON list of {name, image, replicas}, sorted by name
    PRIMARY KEY (environment, colour, name)
);
CREATE TABLE IF NOT EXISTS deployments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL REFERENCES environments(name),
    at          TEXT NOT NULL,
    colour      TEXT NOT NULL,
    stack       TEXT NOT NULL,
    services    TEXT NOT NULL,  -- JSON
    compose     TEXT NOT NULL,  -- JSON, kept whole so that a deployment can be replayed
    result      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    job_url     TEXT
);
CREATE INDEX IF NOT EXISTS deployments_by_environment ON deployments (environment, id);
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL REFERENCES environments(name),
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'switched', 'deployed')),
    actor       TEXT,
    detail      TEXT NOT NULL  -- JSON object
);
CREATE INDEX IF NOT EXISTS events_by_environment ON events (environment, id);
PRAGMA user_version = 1;
"""


def _old_database(path: Path) -> None:
    """A database as the first release left it: lab (green live after a switch), one deployment."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(SCHEMA_V1)
    at = "2026-11-20T10:00:00Z"
    with conn:
        conn.execute("INSERT INTO environments VALUES ('lab', 'green', 3, ?)", (at,))
        conn.executemany(
            "INSERT INTO clusters VALUES ('lab', ?, ?, 2376)", [("blue", "10.213.1.2"), ("green", "10.213.2.2")]
        )
        services = json.dumps(WEB)
        conn.execute("INSERT INTO stacks VALUES ('lab', 'green', 'demo', ?, 'alice', ?)", (at, services))
        conn.execute(
            "INSERT INTO deployments (environment, at, colour, stack, services, compose, result, actor, job_url)"
            " VALUES ('lab', ?, 'green', 'demo', ?, ?, 'succeeded', 'alice', 'https://ci.example/1')",
            (at, services, json.dumps(COMPOSE)),
        )
        for revision, kind, actor in ((1, "created", "setup"), (2, "deployed", "alice"), (3, "switched", "bob")):
            conn.execute(
                "INSERT INTO events (environment, at, kind, actor, detail) VALUES ('lab', ?, ?, ?, ?)",
                (at, kind, actor, json.dumps({"revision": revision})),
            )
        # An event id that was handed out and is gone must never be handed out again.
        conn.execute("UPDATE sqlite_sequence SET seq = 10 WHERE name = 'events'")
    conn.close()


def test_a_database_of_the_first_release_is_migrated(start_state_server: Any, tmp_path: Path) -> None:
    _old_database(tmp_path / "old.db")
    running = start_state_server(db_name="old.db")
    client = running.client()

    env = client.get_environment("lab")
    assert (env.live_colour, env.revision) == ("green", 3)
    assert [s.name for s in env.live_cluster.stacks] == ["demo"]
    old_events = client.history("lab")
    assert [(e["id"], e["kind"]) for e in old_events] == [(3, "switched"), (2, "deployed"), (1, "created")]
    (deployment,) = client.deployments("lab")
    assert "options" not in deployment and deployment["job_url"] == "https://ci.example/1"

    # Everything new works on the migrated database.
    client.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=60, actor="alice")
    new_id = client.record_event("lab", kind="deploy", actor="alice", result="converged", detail={})
    assert new_id == 12  # after the lock's event 11: the AUTOINCREMENT counter survived the rebuild
    assert _deploy(client, options={"prune": True}) == 2
    assert client.release_lock("lab", owner="alice@ci:1") is True
    assert [e["kind"] for e in client.history("lab")] == ["unlocked", "deployed", "deploy", "locked"] + [
        e["kind"] for e in old_events
    ]

    conn = sqlite3.connect(running.db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"events", "events_by_environment", "locks", "deployments_by_environment"} <= names
        assert "events_v2" not in names
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("INSERT INTO events (environment, at, kind, detail) VALUES ('lab', 'x', 'bogus', '{}')")
    finally:
        conn.close()


def test_migration_runs_once(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _old_database(db)
    init_db(str(db))
    schema = sqlite3.connect(db).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    init_db(str(db))  # already current: nothing to do
    assert sqlite3.connect(db).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


def test_a_new_database_gets_the_current_schema(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    init_db(str(db))
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    columns = [row[1] for row in conn.execute("PRAGMA table_info(deployments)")]
    assert columns[-1] == "options"
    conn.close()


def test_a_database_from_a_newer_server_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ConfigError, match="newer than this server's"):
        init_db(str(db))


def test_the_frozen_v2_migration_allows_every_kind_the_contract_names() -> None:
    # Migration v2 keeps its own copy of the kinds (a migration never changes); a kind added to the contract
    # without a new migration would be refused by the database's CHECK. This says so the day it happens.
    from deployer.state import contract, schema

    assert schema._V2_EVENT_KINDS == contract.EVENT_KINDS
