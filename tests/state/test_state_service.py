"""The environment-state service end to end: the real server on loopback, driven by the client."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from deployer.errors import (
    ConfigError,
    StateAuthError,
    StateConflictError,
    UnknownEnvironmentError,
)
from deployer.state.client import Cluster, Environment, Service, ServiceDocs, StateClient
from deployer.state.server import make_server

# ---- create / get / list


def test_health(client: StateClient) -> None:
    assert client.health() == {"status": "ok"}


def test_create_get_and_list(client: StateClient, lab_clusters: dict[str, tuple[str, int]]) -> None:
    assert client.list_environments() == []
    created = client.put_environment("lab", "blue", lab_clusters, actor="alice")
    assert isinstance(created, Environment)
    assert (created.name, created.live_colour, created.revision) == ("lab", "blue", 1)
    client.put_environment("dev", "green", {"blue": ("fd00::1", 2376), "green": ("fd00::2", 12376)})

    env = client.get_environment("lab")
    assert env == created
    assert env.updated_at.endswith("Z")
    assert env.live_cluster == Cluster("blue", "10.213.1.2", 2376, True, ())
    assert env.idle_cluster == Cluster("green", "10.213.2.2", 2376, False, ())
    assert client.resolve("lab").docker_host == "tcp://10.213.1.2:2376"
    assert client.resolve("dev").docker_host == "tcp://[fd00::2]:12376"
    assert client.list_environments() == ["dev", "lab"]


def test_put_existing_replaces_addresses_keeps_stacks(lab_env: StateClient) -> None:
    _deploy(lab_env, "blue", "demo", [("web", "auto-lab/web:1", 2)])
    env = lab_env.put_environment("lab", "blue", {"blue": ("10.213.1.9", 2377), "green": ("10.213.2.9", 2377)})
    assert env.revision == 3
    assert env.clusters["blue"].manager_address == "10.213.1.9"
    assert env.clusters["blue"].docker_port == 2377
    assert [s.name for s in env.clusters["blue"].stacks] == ["demo"]


def test_put_cannot_change_live_colour(lab_env: StateClient, lab_clusters: dict[str, tuple[str, int]]) -> None:
    with pytest.raises(StateConflictError, match="use the switch endpoint"):
        lab_env.put_environment("lab", "green", lab_clusters)
    assert lab_env.get_environment("lab").revision == 1


@pytest.mark.parametrize(
    ("live", "clusters", "message"),
    [
        ("purple", {"blue": ("10.0.0.1", 2376), "green": ("10.0.0.2", 2376)}, "live_colour must be blue or green"),
        ("blue", {"blue": ("10.0.0.1", 2376)}, "clusters is missing 'green'"),
        (
            "blue",
            {"blue": ("10.0.0.1", 2376), "green": ("10.0.0.2", 2376), "red": ("10.0.0.3", 1)},
            "clusters has unknown field 'red'",
        ),
        (
            "blue",
            {"blue": ("10.0.0.300", 2376), "green": ("10.0.0.2", 2376)},
            "clusters.blue.manager_address must be an IPv4 or IPv6 literal, not '10.0.0.300'",
        ),
        (
            "blue",
            {"blue": ("manager.example", 2376), "green": ("10.0.0.2", 2376)},
            "clusters.blue.manager_address must be an IPv4 or IPv6 literal",
        ),
        (
            "blue",
            {"blue": ("10.0.0.1", 0), "green": ("10.0.0.2", 2376)},
            "clusters.blue.docker_port must be an integer from 1 to 65535, not 0",
        ),
        (
            "blue",
            {"blue": ("10.0.0.1", 2376), "green": ("10.0.0.2", 65536)},
            "clusters.green.docker_port must be an integer from 1 to 65535, not 65536",
        ),
        (
            "blue",
            {"blue": ("10.0.0.1", 2376), "green": ("10.0.0.2", "2376")},
            "clusters.green.docker_port must be an integer",
        ),
        (
            "blue",
            {"blue": ("10.0.0.1", 2376), "green": ("10.0.0.1", 2376)},
            "same address and port",
        ),
    ],
)
def test_put_validation(client: StateClient, live: str, clusters: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"rejected PUT /v1/environments/lab \(HTTP 400\)") as caught:
        client.put_environment("lab", live, clusters)
    assert message in str(caught.value)
    assert client.list_environments() == []


def test_invalid_environment_name_refused_by_client_and_server(client: StateClient, state: Any, token: str) -> None:
    with pytest.raises(ConfigError, match="invalid environment name 'Lab_1'"):
        client.get_environment("Lab_1")
    answer = requests.put(
        f"{state.url}/v1/environments/Lab_1",
        json={"live_colour": "blue", "clusters": {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert "invalid environment name" in answer.json()["error"]


def test_unknown_environment_lists_known_ones(lab_env: StateClient) -> None:
    with pytest.raises(UnknownEnvironmentError) as caught:
        lab_env.get_environment("prod")
    assert str(caught.value) == "unknown environment 'prod': known environments are lab"
    for call in (
        lambda: lab_env.switch("prod", "blue", "green"),
        lambda: lab_env.history("prod"),
        lambda: lab_env.deployments("prod"),
        lambda: _deploy(lab_env, "blue", "demo", [("web", "w:1", 1)], name="prod"),
    ):
        with pytest.raises(UnknownEnvironmentError, match="unknown environment 'prod'"):
            call()


def test_unknown_environment_when_none_exist(client: StateClient) -> None:
    with pytest.raises(UnknownEnvironmentError, match="no environments are defined yet"):
        client.resolve("lab")


# ---- authentication


def test_writes_need_a_token_before_any_request(state: Any, lab_clusters: dict[str, tuple[str, int]]) -> None:
    anonymous = state.client(token=None)
    assert anonymous.list_environments() == []  # reads need no token
    with pytest.raises(ConfigError, match="this needs a token: set AUTO_STATE_TOKEN or AUTO_STATE_TOKEN_FILE"):
        anonymous.put_environment("lab", "blue", lab_clusters)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong-token", "Basic dXNlcjpwYXNz", "bearer x"])
def test_writes_without_valid_token_get_401(state: Any, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in (
        ("PUT", "/v1/environments/lab"),
        ("POST", "/v1/environments/lab/switch"),
        ("POST", "/v1/environments/lab/deployments"),
    ):
        answer = requests.request(method, state.url + path, json={}, headers=headers, timeout=5)
        assert answer.status_code == 401, (method, path)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert set(answer.json()) == {"error"}


def test_wrong_token_raises_state_auth_error(state: Any, lab_clusters: dict[str, tuple[str, int]]) -> None:
    wrong = state.client(token="not-the-token")
    with pytest.raises(StateAuthError) as caught:
        wrong.put_environment("lab", "blue", lab_clusters)
    assert str(caught.value) == ("environment-state service refused the token (HTTP 401): check AUTO_STATE_TOKEN")
    assert "not-the-token" not in str(caught.value)


# ---- switch


def test_switch(lab_env: StateClient) -> None:
    env = lab_env.switch("lab", "blue", "green", actor="bob", reason="release 2")
    assert (env.live_colour, env.revision) == ("green", 2)
    assert env.clusters["green"].live and not env.clusters["blue"].live
    assert lab_env.resolve("lab").colour == "green"
    env = lab_env.switch("lab", "green", "blue")
    assert (env.live_colour, env.revision) == ("blue", 3)


def test_switch_conflict(lab_env: StateClient) -> None:
    lab_env.switch("lab", "blue", "green")
    with pytest.raises(StateConflictError) as caught:
        lab_env.switch("lab", "blue", "green")
    assert str(caught.value) == "live colour is green, not blue: someone switched first; re-read and retry"
    assert lab_env.get_environment("lab").revision == 2


def test_switch_to_same_colour_is_rejected(lab_env: StateClient) -> None:
    with pytest.raises(ConfigError, match="to must be the other colour"):
        lab_env.switch("lab", "blue", "blue")


def test_concurrent_switches_exactly_one_wins(state: Any, lab_env: StateClient) -> None:
    contenders = 8
    barrier = threading.Barrier(contenders)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def contend(index: int) -> None:
        client = state.client()  # one client (and session) per thread
        barrier.wait()
        try:
            result: Any = client.switch("lab", "blue", "green", actor=f"racer-{index}")
        except StateConflictError as exc:
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    wins = [o for o in outcomes if isinstance(o, Environment)]
    losses = [o for o in outcomes if isinstance(o, StateConflictError)]
    assert (len(wins), len(losses)) == (1, contenders - 1)
    assert wins[0].revision == 2
    env = lab_env.get_environment("lab")
    assert (env.live_colour, env.revision) == ("green", 2)
    assert [e["kind"] for e in lab_env.history("lab")] == ["switched", "created"]


# ---- deployments


def _deploy(
    client: StateClient,
    colour: str,
    stack: str,
    services: list[tuple[str, str, int]],
    *,
    result: str = "succeeded",
    actor: str = "alice",
    name: str = "lab",
) -> int:
    return client.record_deployment(
        name,
        colour=colour,
        stack=stack,
        services=[{"name": n, "image": i, "replicas": r} for n, i, r in services],
        compose=[{"file": "docker-compose.yml", "content": f"services: # {stack}\n"}],
        result=result,
        actor=actor,
        job_url="https://gitlab.example/jobs/1",
    )


def test_deployments_merge_into_shared_stack(lab_env: StateClient) -> None:
    first = _deploy(lab_env, "green", "shared", [("web", "team-a/web:1", 2), ("api", "team-a/api:1", 1)])
    second = _deploy(
        lab_env, "green", "shared", [("web", "team-a/web:2", 3), ("worker", "team-b/worker:1", 1)], actor="bob"
    )
    failed = _deploy(lab_env, "green", "shared", [("api", "team-a/api:BROKEN", 1)], result="failed")
    assert first < second < failed

    env = lab_env.get_environment("lab")
    assert env.revision == 4  # created + three deployments
    assert env.clusters["blue"].stacks == ()
    (stack,) = env.clusters["green"].stacks
    assert (stack.name, stack.deployed_by) == ("shared", "bob")
    assert stack.services == (
        Service("api", "team-a/api:1", 1),  # kept from the first; the failed one did not touch it
        Service("web", "team-a/web:2", 3),  # replaced
        Service("worker", "team-b/worker:1", 1),  # added
    )


def test_service_docs_are_kept_with_the_stack(lab_env: StateClient) -> None:
    docs = {"version": "v2", "spec_url": "https://web.example/openapi.json", "docs_url": "https://web.example/d.md"}
    lab_env.record_deployment(
        "lab",
        colour="blue",
        stack="shared",
        services=[
            {"name": "web", "image": "w:1", "replicas": 1, "docs": docs},
            {"name": "db", "image": "d", "replicas": 1},
        ],
        compose=[],
        result="succeeded",
        actor="alice",
    )
    (stack,) = lab_env.get_environment("lab").clusters["blue"].stacks
    assert stack.services == (
        Service("db", "d", 1),
        Service("web", "w:1", 1, ServiceDocs("v2", "https://web.example/openapi.json", "https://web.example/d.md")),
    )


def test_deployments_listing(lab_env: StateClient) -> None:
    a = _deploy(lab_env, "blue", "demo", [("web", "w:1", 1)])
    b = _deploy(lab_env, "green", "demo", [("web", "w:2", 1)])
    c = _deploy(lab_env, "green", "other", [("db", "d:1", 1)], result="rolled_back")

    assert [d["id"] for d in lab_env.deployments("lab")] == [c, b, a]
    assert [d["id"] for d in lab_env.deployments("lab", colour="green")] == [c, b]
    assert [d["id"] for d in lab_env.deployments("lab", stack="demo")] == [b, a]
    assert [d["id"] for d in lab_env.deployments("lab", colour="green", stack="demo", limit=1)] == [b]
    newest = lab_env.deployments("lab", limit=1)[0]
    assert set(newest) == {"id", "at", "colour", "stack", "services", "compose", "result", "actor", "job_url"}
    assert newest["compose"] == [{"file": "docker-compose.yml", "content": "services: # other\n"}]
    assert newest["result"] == "rolled_back"
    assert newest["job_url"] == "https://gitlab.example/jobs/1"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"colour": "red"}, "colour must be blue or green"),
        ({"services": []}, "services must be a non-empty list"),
        ({"services": [{"name": "web", "image": "w:1"}]}, "services[0] is missing 'replicas'"),
        ({"services": [{"name": "web", "image": "w:1", "replicas": -1}]}, "services[0].replicas must be"),
        (
            {
                "services": [
                    {"name": "web", "image": "w:1", "replicas": 1},
                    {"name": "web", "image": "w:2", "replicas": 1},
                ]
            },
            "services lists 'web' twice",
        ),
        ({"stack": "bad stack"}, "stack 'bad stack' does not match"),
        ({"stack": "demo\n"}, "does not match"),  # a trailing newline is not a name's end
        ({"compose": [{"file": "x.yml"}]}, "compose[0] is missing 'content'"),
        ({"result": "Succeeded!"}, "result 'Succeeded!' does not match"),
        ({"result": "succeeded\n"}, "does not match"),
        (
            {"services": [{"name": "web", "image": "w:1", "replicas": 1, "docs": {"version": "v1"}}]},
            "services[0].docs is missing 'spec_url'",
        ),
        (
            {
                "services": [
                    {"name": "w", "image": "w:1", "replicas": 1, "docs": {"version": "v1", "spec_url": "http://w/x"}}
                ]
            },
            "services[0].docs.spec_url must be an https:// URL",
        ),
    ],
)
def test_deployment_validation(lab_env: StateClient, overrides: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "colour": "blue",
        "stack": "demo",
        "services": [{"name": "web", "image": "w:1", "replicas": 1}],
        "compose": [],
        "result": "succeeded",
        "actor": "alice",
    }
    args.update(overrides)
    with pytest.raises(ConfigError, match=r"\(HTTP 400\)") as caught:
        lab_env.record_deployment("lab", **args)
    assert message in str(caught.value)
    assert lab_env.deployments("lab") == []


# ---- history


def test_history_order_and_kinds(lab_env: StateClient, lab_clusters: dict[str, tuple[str, int]]) -> None:
    lab_env.put_environment("lab", "blue", lab_clusters, actor="carol")
    deployment = _deploy(lab_env, "green", "demo", [("web", "w:1", 1)], actor="alice")
    lab_env.switch("lab", "blue", "green", actor="bob", reason="release 1")

    events = lab_env.history("lab")
    assert [e["kind"] for e in events] == ["switched", "deployed", "updated", "created"]
    assert [e["actor"] for e in events] == ["bob", "alice", "carol", "setup"]
    assert [e["detail"]["revision"] for e in events] == [4, 3, 2, 1]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True)
    assert events[0]["detail"] == {"revision": 4, "from": "blue", "to": "green", "reason": "release 1"}
    assert events[1]["detail"]["deployment_id"] == deployment
    assert events[1]["detail"]["services"] == ["web"]
    assert events[2]["detail"]["previous_clusters"]["blue"] == {"manager_address": "10.213.1.2", "docker_port": 2376}
    assert all(e["at"].endswith("Z") for e in events)
    assert [e["kind"] for e in lab_env.history("lab", limit=2)] == ["switched", "deployed"]


def test_failed_write_leaves_no_event(lab_env: StateClient) -> None:
    with pytest.raises(StateConflictError):
        lab_env.switch("lab", "green", "blue")
    assert [e["kind"] for e in lab_env.history("lab")] == ["created"]


# ---- persistence, HTTPS, run()


def test_state_survives_restart(start_state_server: Any, lab_clusters: dict[str, tuple[str, int]]) -> None:
    first = start_state_server(db_name="persist.db")
    first.client().put_environment("lab", "blue", lab_clusters)
    first.client().switch("lab", "blue", "green")
    first.server.shutdown()
    second = start_state_server(db_name="persist.db")
    env = second.client().get_environment("lab")
    assert (env.live_colour, env.revision) == ("green", 2)


def test_https_with_the_right_ca(
    start_state_server: Any, tls_files: Any, lab_clusters: dict[str, tuple[str, int]]
) -> None:
    secure = start_state_server(certfile=tls_files.cert, keyfile=tls_files.key)
    assert secure.url.startswith("https://127.0.0.1:")
    client = secure.client(ca_bundle=tls_files.ca)
    assert client.put_environment("lab", "blue", lab_clusters).revision == 1
    assert client.resolve("lab").manager_address == "10.213.1.2"


def test_make_server_refuses_an_empty_token(tmp_path: Path) -> None:
    for empty in ("", "   \n"):
        with pytest.raises(ConfigError, match="set AUTO_STATE_TOKEN or --token-file"):
            make_server(str(tmp_path / "s.db"), "127.0.0.1", 0, empty)


def test_run_serves_until_sigterm(tmp_path: Path, token: str) -> None:
    code = (
        "import sys; from deployer.state.server import run; "
        f"run({str(tmp_path / 'run.db')!r}, '127.0.0.1:0', sys.stdin.readline().strip())"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdin is not None and process.stderr is not None
        process.stdin.write(token + "\n")
        process.stdin.close()
        line = process.stderr.readline().strip()
        assert line.startswith("state service listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert StateClient(url, retries=0).health() == {"status": "ok"}
        process.terminate()
        assert process.wait(10) == 0
        rest = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert token not in line + rest
    assert "GET /v1/health" in rest  # the access log line, without headers
