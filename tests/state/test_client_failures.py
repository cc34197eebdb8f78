"""How the client fails: retries, malformed answers, TLS, configuration, and never leaking the token."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest

from deployer.errors import (
    ConfigError,
    DeployerError,
    InvalidStateError,
    StateAuthError,
    StateConflictError,
    StateUnavailableError,
    TLSError,
)
from deployer.state.client import StateClient, parse_environment

# ---- retries


class SleepRecorder:
    """Records the backoff the client asks for instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_service_down_gives_up_after_retries_plus_one_attempts(refused_url: str) -> None:
    sleep = SleepRecorder()
    client = StateClient(refused_url, retries=3, backoff=0.2, sleep=sleep)
    with pytest.raises(StateUnavailableError) as caught:
        client.get_environment("lab")
    assert sleep.calls == pytest.approx([0.2, 0.4, 0.8])  # 3 retries -> 4 attempts
    assert str(caught.value) == (
        f"environment-state service at {refused_url} unreachable after 4 attempts "
        "(last: ConnectionError): check AUTO_STATE_URL and that the service is up"
    )


def test_post_is_retried_on_connection_refused(refused_url: str, token: str) -> None:
    sleep = SleepRecorder()
    client = StateClient(refused_url, token=token, retries=2, sleep=sleep)
    with pytest.raises(StateUnavailableError, match="unreachable after 3 attempts"):
        client.switch("lab", "blue", "green")
    assert len(sleep.calls) == 2


RECORD = {
    "colour": "blue",
    "stack": "orders",
    "services": [{"name": "api", "image": "registry.example/orders:1", "replicas": 1}],
    "compose": [{"file": "stack.yml", "content": "services: {}\n"}],
    "result": "succeeded",
    "actor": "ci",
}


def test_the_deploy_record_is_retried_until_the_deadline_not_retries_times(scripted_server: Any, token: str) -> None:
    """The stack changed already: a record lost to a short outage is a replay lost to the next switch."""
    server = scripted_server([*[(503, {"error": "restarting"})] * 6, (201, {"id": 7})])
    sleep = SleepRecorder()
    client = StateClient(server.url, token=token, retries=1, sleep=sleep)
    assert client.record_deployment("lab", **RECORD) == 7
    assert sleep.calls == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0])  # doubling, then MAX_PAUSE
    assert [r[0] for r in server.requests] == ["POST"] * 7
    with pytest.raises(StateUnavailableError, match="after 2 attempts"):  # other calls: retries + 1
        StateClient(scripted_server([(503, {"error": "down"})]).url, retries=1, sleep=sleep).get_environment("lab")


def test_the_deploy_record_gives_up_at_the_deadline(scripted_server: Any, token: str) -> None:
    server = scripted_server([(503, {"error": "down"})])
    client = StateClient(server.url, token=token, retries=0, backoff=0.05, deadline=1.0)
    with pytest.raises(StateUnavailableError) as err:
        client.record_deployment("lab", **RECORD)
    assert str(err.value) == (
        f"environment-state service at {server.url} did not answer POST /v1/environments/lab/deployments within "
        "the call's deadline of 1 s (AUTO_STATE_DEADLINE): check that the service is up and not overloaded"
    )
    assert len(server.requests) > 2  # retries=0 bounds the other calls, not this one


def test_503_twice_then_200_succeeds(scripted_server: Any, env_body: Any) -> None:
    server = scripted_server([(503, {"error": "busy"}), (503, {"error": "busy"}), (200, env_body())])
    sleep = SleepRecorder()
    env = StateClient(server.url, retries=3, sleep=sleep).get_environment("lab")
    assert env.live_colour == "blue"
    assert len(server.requests) == 3
    assert sleep.calls == pytest.approx([0.2, 0.4])


def test_persistent_5xx_reports_last_status(scripted_server: Any) -> None:
    server = scripted_server([(502, b"<html>bad gateway</html>")])
    client = StateClient(server.url, retries=1, sleep=SleepRecorder())
    with pytest.raises(StateUnavailableError, match=r"unreachable after 2 attempts \(last: HTTP 502\)"):
        client.list_environments()
    assert len(server.requests) == 2


def test_post_is_not_retried_on_500(scripted_server: Any, token: str) -> None:
    server = scripted_server([(500, {"error": "boom"})])
    client = StateClient(server.url, token=token, retries=3, sleep=SleepRecorder())
    with pytest.raises(StateUnavailableError, match="not retried because the write may have been applied"):
        client.switch("lab", "blue", "green")
    assert len(server.requests) == 1


def test_post_is_retried_on_503(scripted_server: Any, token: str, env_body: Any) -> None:
    server = scripted_server([(503, {"error": "busy"}), (200, env_body(live_colour="green", clusters=_flipped()))])
    client = StateClient(server.url, token=token, retries=3, sleep=SleepRecorder())
    assert client.switch("lab", "blue", "green").live_colour == "green"
    assert len(server.requests) == 2


def _flipped() -> dict[str, Any]:
    return {
        "blue": {"manager_address": "10.213.1.2", "docker_port": 2376, "live": False, "stacks": []},
        "green": {"manager_address": "10.213.2.2", "docker_port": 2376, "live": True, "stacks": []},
    }


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (400, ConfigError, "rejected GET /v1/environments/lab (HTTP 400): nope"),
        (404, ConfigError, "answered HTTP 404 to GET /v1/environments/lab: check AUTO_STATE_URL"),
        (401, StateAuthError, "refused the token (HTTP 401)"),
        (403, StateAuthError, "refused the token (HTTP 403)"),
        (409, StateConflictError, "nope"),
        (422, ConfigError, "(HTTP 422): nope"),
    ],
)
def test_4xx_is_never_retried(scripted_server: Any, status: int, error: type, message: str) -> None:
    server = scripted_server([(status, {"error": "nope"})])
    sleep = SleepRecorder()
    with pytest.raises(error) as caught:
        StateClient(server.url, retries=3, sleep=sleep).get_environment("lab")
    assert message in str(caught.value)
    assert len(server.requests) == 1
    assert sleep.calls == []


def test_redirect_is_not_followed(scripted_server: Any) -> None:
    server = scripted_server([(301, {"error": "moved"})])
    with pytest.raises(ConfigError, match=r"answered a redirect \(HTTP 301\)"):
        StateClient(server.url, retries=0).health()


# ---- malformed answers


def _live(blue: bool, green: bool) -> dict[str, Any]:
    return {
        "blue": {"manager_address": "10.213.1.2", "docker_port": 2376, "live": blue, "stacks": []},
        "green": {"manager_address": "10.213.2.2", "docker_port": 2376, "live": green, "stacks": []},
    }


def _cluster_override(colour: str, **fields: Any) -> dict[str, Any]:
    clusters = _live(True, False)
    clusters[colour].update(fields)
    for key, value in fields.items():
        if value is _MISSING:
            del clusters[colour][key]
    return clusters


_MISSING = object()
_PREFIX = "invalid state for environment 'lab': "


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>not json</html>", "answer is not JSON"),
        (b"[1, 2]", "answer is not a JSON object"),
        ({"clusters": _live(True, True)}, "both blue and green are marked live"),
        ({"clusters": _live(False, False)}, "no cluster is marked live"),
        ({"live_colour": "green"}, "clusters.blue.live is true but live_colour is green"),
        ({"live_colour": "purple"}, "live_colour is 'purple', expected blue or green"),
        (
            {"clusters": {**_live(True, False), "purple": _live(True, False)["green"]}},
            "clusters has unknown colour 'purple'",
        ),
        ({"clusters": {"blue": _live(True, False)["blue"]}}, "clusters.green is missing"),
        (
            {"clusters": _cluster_override("blue", manager_address="10.0.0.300")},
            "clusters.blue.manager_address '10.0.0.300' is not an IP address",
        ),
        (
            {"clusters": _cluster_override("green", manager_address=_MISSING)},
            "clusters.green.manager_address is missing",
        ),
        ({"clusters": _cluster_override("blue", docker_port=_MISSING)}, "clusters.blue.docker_port is missing"),
        (
            {"clusters": _cluster_override("blue", docker_port="2376")},
            "clusters.blue.docker_port '2376' is not an integer",
        ),
        (
            {"clusters": _cluster_override("green", docker_port=70000)},
            "clusters.green.docker_port 70000 is not a port (1-65535)",
        ),
        (
            {"clusters": _cluster_override("green", docker_port=True)},
            "clusters.green.docker_port true is not an integer",
        ),
        ({"name": "prod"}, "name is 'prod', expected 'lab'"),
        ({"revision": "3"}, "revision '3' is not an integer"),
    ],
)
def test_malformed_environment_answers(scripted_server: Any, env_body: Any, body: Any, message: str) -> None:
    payload = body if isinstance(body, bytes) else env_body(**body)
    server = scripted_server([(200, payload)])
    with pytest.raises(InvalidStateError) as caught:
        StateClient(server.url, retries=3, sleep=SleepRecorder()).resolve("lab")
    assert str(caught.value) == _PREFIX + message
    assert len(server.requests) == 1  # a bad answer is not retried


def test_malformed_stack_is_rejected(env_body: Any) -> None:
    clusters = _live(True, False)
    clusters["green"]["stacks"] = [{"name": "demo", "deployed_at": "x", "deployed_by": "a", "services": [{}]}]
    with pytest.raises(InvalidStateError) as caught:
        parse_environment(env_body(clusters=clusters), "lab")
    assert str(caught.value) == _PREFIX + "clusters.green.stacks[0].services[0].name is missing"


def test_valid_environment_parses(env_body: Any) -> None:
    env = parse_environment(env_body(), "lab")
    assert env.live_cluster.manager_address == "10.213.1.2"
    assert env.idle_colour == "green"


def test_malformed_list_answer(scripted_server: Any) -> None:
    server = scripted_server([(200, {"environments": [{"name": 3}]})])
    with pytest.raises(InvalidStateError) as caught:
        StateClient(server.url, retries=0).list_environments()
    assert (
        str(caught.value) == "invalid answer to GET /v1/environments: environments[0].name 3 is not a non-empty string"
    )


# ---- TLS


def test_https_with_the_wrong_ca_is_a_tls_error(start_state_server: Any, tls_files: Any) -> None:
    secure = start_state_server(certfile=tls_files.cert, keyfile=tls_files.key)
    sleep = SleepRecorder()
    client = secure.client(ca_bundle=tls_files.wrong_ca, retries=3, sleep=sleep)
    with pytest.raises(TLSError) as caught:
        client.get_environment("lab")
    assert str(caught.value) == "TLS verification of the environment-state service failed: check AUTO_STATE_CA"
    assert sleep.calls == []  # no retry


def test_https_without_a_ca_uses_the_system_store_and_fails(start_state_server: Any, tls_files: Any) -> None:
    secure = start_state_server(certfile=tls_files.cert, keyfile=tls_files.key)
    with pytest.raises(TLSError):
        secure.client().health()


def test_plain_http_client_against_https_server_fails_fast(start_state_server: Any, tls_files: Any) -> None:
    secure = start_state_server(certfile=tls_files.cert, keyfile=tls_files.key)
    plain = StateClient(secure.url.replace("https://", "http://"), retries=1, sleep=SleepRecorder())
    with pytest.raises(StateUnavailableError):
        plain.health()


def test_no_option_disables_verification() -> None:
    with pytest.raises(TypeError):
        StateClient("https://127.0.0.1:1", verify=False)  # type: ignore[call-arg]


# ---- configuration


def test_from_env_requires_url() -> None:
    with pytest.raises(ConfigError) as caught:
        StateClient.from_env({})
    assert str(caught.value) == (
        'AUTO_STATE_URL is not set: point it at the environment-state service (or run: eval "$(auto-deploy lab env)")'
    )


def test_from_env_reads_token_file_and_options(state: Any, tmp_path: Path, token: str, tls_files: Any) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {token}\n")
    client = StateClient.from_env(
        {
            "AUTO_STATE_URL": state.url,
            "AUTO_STATE_TOKEN_FILE": str(token_file),
            "AUTO_STATE_CA": tls_files.ca,
            "AUTO_STATE_TIMEOUT": "2.5",
            "AUTO_STATE_RETRIES": "0",
        }
    )
    env = client.put_environment("lab", "blue", {"blue": ("10.0.0.1", 2376), "green": ("10.0.0.2", 2376)})
    assert env.revision == 1
    assert client._timeout == (3.05, 2.5)
    assert client._retries == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"AUTO_STATE_CA": "/nonexistent/ca.pem"}, "AUTO_STATE_CA /nonexistent/ca.pem does not exist"),
        ({"AUTO_STATE_TOKEN_FILE": "/nonexistent/token"}, "cannot read AUTO_STATE_TOKEN_FILE /nonexistent/token"),
        ({"AUTO_STATE_TIMEOUT": "soon"}, "AUTO_STATE_TIMEOUT 'soon' is not a number of seconds"),
        ({"AUTO_STATE_RETRIES": "-1"}, "AUTO_STATE_RETRIES '-1' is not a whole number"),
        ({"AUTO_STATE_TOKEN": "two words"}, "the token must be printable ASCII without spaces"),
    ],
)
def test_from_env_rejects_bad_settings(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        StateClient.from_env({"AUTO_STATE_URL": "https://127.0.0.1:8443", **extra})
    assert message in str(caught.value)
    assert "two words" not in str(caught.value)


@pytest.mark.parametrize("url", ["", "ftp://x", "127.0.0.1:8443", "https://user:pw@h:1"])
def test_bad_base_url(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        StateClient(url)
    assert "pw" not in str(caught.value)


# ---- the token never leaks


def _full_text(exc: BaseException) -> str:
    """Everything a user could see of an exception: message, repr, chained causes, traceback."""
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_token_never_appears_in_errors(
    state: Any, start_state_server: Any, scripted_server: Any, refused_url: str, tls_files: Any, token: str
) -> None:
    echo = scripted_server([(400, {"error": f"bad request from Bearer {token}"})])
    secure = start_state_server(certfile=tls_files.cert, keyfile=tls_files.key, db_name="tls.db")
    clusters = {"blue": ("10.0.0.1", 2376), "green": ("10.0.0.2", 2376)}
    clients = [
        state.client(),
        StateClient(refused_url, token=token, retries=1, sleep=SleepRecorder()),
        StateClient(echo.url, token=token, retries=0),
        secure.client(ca_bundle=tls_files.wrong_ca),
    ]
    caught: list[DeployerError] = []
    for client in clients:
        assert token not in repr(client)
        for call in (
            lambda c=client: c.put_environment("lab", "green", clusters),
            lambda c=client: c.put_environment("lab", "blue", clusters),  # conflicts on the 2nd round
            lambda c=client: c.switch("lab", "green", "blue"),
            lambda c=client: c.get_environment("nope"),
            lambda c=client: c.put_environment("lab", "blue", {"blue": ("x", 1), "green": ("y", 2)}),
        ):
            try:
                call()
            except DeployerError as exc:
                caught.append(exc)
    kinds = {type(exc).__name__ for exc in caught}
    assert {"StateConflictError", "StateUnavailableError", "ConfigError", "TLSError"} <= kinds
    assert any("<token>" in str(exc) for exc in caught)  # the echoed token was scrubbed
    for exc in caught:
        assert token not in _full_text(exc)


def test_server_log_never_contains_the_token(
    client: StateClient, capfd: pytest.CaptureFixture[str], token: str
) -> None:
    client.put_environment("lab", "blue", {"blue": ("10.0.0.1", 2376), "green": ("10.0.0.2", 2376)})
    with pytest.raises(StateConflictError):
        client.switch("lab", "green", "blue")
    out, err = capfd.readouterr()
    assert "PUT /v1/environments/lab" in err
    assert token not in out + err
    assert "Authorization" not in err


def test_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist: check AUTO_STATE_CA"):
        StateClient("https://127.0.0.1:8443", ca_bundle=str(tmp_path / "missing.pem"))


def test_environment_is_frozen_and_hashable(env_body: Any) -> None:
    env = parse_environment(env_body(), "lab")
    assert hash(env) == hash(parse_environment(env_body(), "lab"))
    with pytest.raises(AttributeError):
        env.live_colour = "green"  # type: ignore[misc]


def test_token_never_travels_over_plain_http_beyond_loopback() -> None:
    from deployer.errors import ConfigError
    from deployer.state.client import StateClient

    client = StateClient("http://state.example.internal:8787", token="t0ken-value", retries=0)
    with pytest.raises(ConfigError) as err:
        client.switch("lab", "blue", "green")
    assert str(err.value) == (
        "refusing to send the token over plain http to a host other than loopback: use https in AUTO_STATE_URL"
    )
    assert "t0ken-value" not in str(err.value)
