"""A full disk under the state service: the write is rolled back, the service answers 507 saying so, and the client
reports it at once (no retries: they cannot help) without claiming the write may have been applied."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from deployer.errors import StateUnavailableError
from deployer.state import handler as handler_module

CLUSTERS = {"blue": ("10.213.1.2", 2376), "green": ("10.213.2.2", 2376)}


def test_a_full_disk_is_a_507_and_one_clear_line(state: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = state.client(retries=3)
    client.put_environment("lab", "blue", CLUSTERS, actor="setup")
    real_connect = handler_module.connect

    def full(db_path: str) -> sqlite3.Connection:
        conn = real_connect(db_path)
        # The database may not grow by one page: what SQLite says when its volume is full.
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(handler_module, "connect", full)
    big = [{"name": f"s{i}", "image": "x" * 500, "replicas": 1} for i in range(64)]
    with pytest.raises(StateUnavailableError) as err:
        client.record_deployment(
            "lab", colour="blue", stack="s", services=big, compose=[{"file": "a.yml", "content": "x"}],
            result="failed", actor="t",
        )  # fmt: skip
    assert str(err.value) == (
        f"environment-state service at {state.url} cannot store anything (HTTP 507): its disk is full (or failing): "
        "nothing was written; free space on the service's volume"
    )
    monkeypatch.setattr(handler_module, "connect", real_connect)
    assert client.deployments("lab") == []  # rolled back: nothing half-written
    assert client.get_environment("lab").live_colour == "blue"  # reads still work
