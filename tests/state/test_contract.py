"""contract.yaml matches the server and the client: same routes, and every request the client sends
and every answer the server gives (errors included) validates against the contract's schemas."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from deployer.errors import DeployerError
from deployer.state import server as server_module

CONTRACT_PATH = Path(server_module.__file__).with_name("contract.yaml")
WRITE_METHODS = {"put", "post", "delete"}
BODY_METHODS = {"put", "post"}


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    return yaml.safe_load(CONTRACT_PATH.read_text())


# ---- validation with jsonschema (2020-12) and the spec itself with openapi-spec-validator


def _resolve(contract: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = contract
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def validate(contract: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
    """Errors of ``value`` against ``schema`` (empty when valid); ``#/components/...`` refs resolve."""
    rooted = {**schema, "components": contract["components"]}
    validator = Draft202012Validator(rooted, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{where}{e.json_path.removeprefix('$')}: {e.message}" for e in validator.iter_errors(value)]


def test_contract_is_a_valid_openapi_document(contract: dict[str, Any]) -> None:
    validate_spec(contract)


def test_the_validator_catches_mistakes(contract: dict[str, Any]) -> None:
    env = {"$ref": "#/components/schemas/Environment"}
    assert validate(contract, env, {"name": "lab"})
    assert validate(contract, {"$ref": "#/components/schemas/ClusterSpec"}, {"manager_address": "h", "docker_port": 1})
    assert validate(contract, {"$ref": "#/components/schemas/Error"}, {"error": "a\nb"})
    assert not validate(contract, {"$ref": "#/components/schemas/Error"}, {"error": "one line"})


# ---- the contract's shape


def _operations(contract: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in contract["paths"].items()
        for method, op in item.items()
        if method in {"get", "put", "post", "patch", "delete"}
    }


def test_contract_is_openapi_31_with_bearer_auth(contract: dict[str, Any]) -> None:
    assert contract["openapi"].startswith("3.1")
    assert contract["components"]["securitySchemes"]["bearerAuth"] == {
        **contract["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    refs = re.findall(r"\$ref: \"?(#/[^\"}\s]+)", CONTRACT_PATH.read_text())
    assert refs
    for ref in refs:
        _resolve(contract, {"$ref": ref})  # raises KeyError when dangling


def test_contract_routes_match_the_server(contract: dict[str, Any]) -> None:
    served = set()
    for regex, methods in server_module._Handler.ROUTES:
        template = regex.pattern.strip("^$").replace("([^/]+)", "{name}")
        served |= {(method, template) for method in methods}
    assert set(_operations(contract)) == served


def test_writes_need_bearer_auth_and_reads_do_not(contract: dict[str, Any]) -> None:
    for (method, path), op in _operations(contract).items():
        if method.lower() in WRITE_METHODS:
            assert op.get("security") == [{"bearerAuth": []}], (method, path)
            assert "401" in op["responses"], (method, path)
        else:
            assert not op.get("security"), (method, path)
        if method.lower() in BODY_METHODS:
            assert op["requestBody"]["required"] is True
        else:
            assert "requestBody" not in op, (method, path)
        for status, response in op["responses"].items():
            response = _resolve(contract, response)
            assert "application/json" in response["content"], (method, path, status)
            schema = response["content"]["application/json"]["schema"]
            if status == "409" and path.endswith("/lock"):  # the error line plus the holder's lock
                assert schema == {"$ref": "#/components/schemas/LockConflict"}, (method, path)
            elif status.startswith(("4", "5")):
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


# ---- every exchange of a realistic session validates against the contract


class RecordingSession(requests.Session):
    """The client's transport seam, recording each request and answer."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.exchanges: list[tuple[str, str, Any, requests.Response]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().request(method, url, **kwargs)
        self.exchanges.append((method, url, kwargs.get("json"), response))
        return response


def _operation_for(contract: dict[str, Any], method: str, url: str) -> tuple[str, dict[str, Any]]:
    path = urlsplit(url).path
    for (op_method, template), op in _operations(contract).items():
        if op_method == method and re.fullmatch(template.replace("{name}", "[^/]+"), path):
            return template, op
    raise AssertionError(f"{method} {path} is not in the contract")


def test_client_and_server_exchanges_follow_the_contract(contract: dict[str, Any], state: Any) -> None:
    session = RecordingSession()
    client = state.client(session=session)
    clusters = {"blue": ("10.213.1.2", 2376), "green": ("fd00::2", 2376)}
    steps = [
        lambda: client.health(),
        lambda: client.put_environment("lab", "blue", clusters, actor="alice"),
        lambda: client.put_environment("lab", "blue", clusters),
        lambda: client.put_environment("lab", "green", clusters),  # 409
        lambda: client.put_environment("lab", "blue", {"blue": ("nope", 1), "green": ("::1", 2)}),  # 400
        lambda: client.record_deployment(
            "lab",
            colour="green",
            stack="shared",
            services=[
                {
                    "name": "web",
                    "image": "auto-lab/web:1",
                    "replicas": 2,
                    "docs": {"version": "v1", "spec_url": "https://web.example/openapi.json"},
                }
            ],
            compose=[{"file": "docker-compose.yml", "content": "services: {}\n"}],
            result="succeeded",
            actor="alice",
            job_url="https://ci.example/1",
        ),
        lambda: client.record_deployment(
            "lab",
            colour="blue",
            stack="x",
            services=[{"name": "a", "image": "b", "replicas": 0}],
            compose=[],
            result="failed",
            actor="bob",
        ),
        lambda: client.switch("lab", "blue", "green", actor="bob", reason="release"),
        lambda: client.switch("lab", "blue", "green"),  # 409
        lambda: client.get_environment("lab"),
        lambda: client.get_environment("nope"),  # 404, then the list
        lambda: client.list_environments(),
        lambda: client.deployments("lab", colour="green", stack="shared", limit=5),
        lambda: client.history("lab", limit=10),
        lambda: state.client(token="wrong", session=session).switch("lab", "green", "blue"),  # 401
    ]
    for step in steps:
        with contextlib.suppress(DeployerError):  # the errors are part of the exchange being checked
            step()

    seen_statuses = set()
    for method, url, body, response in session.exchanges:
        template, op = _operation_for(contract, method, url)
        if body is not None and response.status_code != 400:  # the 400 step sends a bad body on purpose
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert validate(contract, schema, body) == [], (method, url, body)
        status = str(response.status_code)
        assert status in op["responses"], (method, template, status)
        seen_statuses.add(status)
        declared = _resolve(contract, op["responses"][status])
        schema = declared["content"]["application/json"]["schema"]
        assert validate(contract, schema, response.json()) == [], (method, template, status, response.text)
        if status == "401":
            header = _resolve(contract, declared["headers"]["WWW-Authenticate"])
            assert re.match(header["schema"]["pattern"], response.headers["WWW-Authenticate"])
    assert {"200", "201", "400", "401", "404", "409"} <= seen_statuses


def _check_exchanges(contract: dict[str, Any], session: RecordingSession, bad_bodies: int = 0) -> set[tuple[str, str]]:
    """Validate every recorded request body and answer; returns the (operation, status) pairs seen."""
    seen = set()
    for method, url, body, response in session.exchanges:
        template, op = _operation_for(contract, method, url)
        if body is not None and response.status_code != 400:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert validate(contract, schema, body) == [], (method, url, body)
        elif body is not None:
            bad_bodies -= 1
        if method == "DELETE":
            assert body is None
            query = dict(parse_qsl(urlsplit(url).query))
            declared_params = {p["name"]: p for p in op.get("parameters", [])}
            for key, value in query.items():
                assert key in declared_params, (method, url, key)
                if response.status_code != 400:
                    assert validate(contract, declared_params[key]["schema"], value) == [], (method, url, key)
        status = str(response.status_code)
        assert status in op["responses"], (method, template, status)
        seen.add((f"{method} {template}", status))
        declared = _resolve(contract, op["responses"][status])
        schema = declared["content"]["application/json"]["schema"]
        assert validate(contract, schema, response.json()) == [], (method, template, status, response.text)
        if status == "401":
            header = _resolve(contract, declared["headers"]["WWW-Authenticate"])
            assert re.match(header["schema"]["pattern"], response.headers["WWW-Authenticate"])
    assert bad_bodies >= 0, "more 400 answers to bodies than the steps meant to send"
    return seen


def test_lock_events_and_options_exchanges_follow_the_contract(contract: dict[str, Any], state: Any) -> None:
    session = RecordingSession()
    client = state.client(session=session)
    wrong = state.client(token="wrong", session=session)
    clusters = {"blue": ("10.213.1.2", 2376), "green": ("10.213.2.2", 2376)}
    compose = [{"file": "docker-compose.yml", "content": "services: {}\n"}]
    web = [{"name": "web", "image": "auto-lab/web:1", "replicas": 2}]
    options = {"resolve_image": "never", "with_registry_auth": True, "prune": False}
    steps = [
        lambda: client.put_environment("lab", "blue", clusters, actor="alice"),
        lambda: client.lock_status("lab"),  # null
        lambda: client.acquire_lock(
            "lab", owner="alice@ci:1", purpose="deploy web", ttl=60, actor="alice", job_url="https://ci.example/7"
        ),
        lambda: client.acquire_lock("lab", owner="alice@ci:1", purpose="deploy web", ttl=90.5),  # renewal
        lambda: client.lock_status("lab"),  # the lock
        lambda: client.acquire_lock("lab", owner="bob@ci:2", purpose="switch", ttl=30, actor="bob"),  # 409
        lambda: client.release_lock("lab", owner="bob@ci:2"),  # 409
        lambda: client.acquire_lock("lab", owner="bob@ci:2", purpose="x", ttl=0.5),  # 400
        lambda: client.acquire_lock("nope", owner="bob@ci:2", purpose="x", ttl=5),  # 404, then the list
        lambda: wrong.acquire_lock("lab", owner="bob@ci:2", purpose="x", ttl=5),  # 401
        lambda: wrong.release_lock("lab", force=True),  # 401
        lambda: client.record_deployment(
            "lab",
            colour="green",
            stack="shared",
            services=web,
            compose=compose,
            result="succeeded",
            actor="alice",
            job_url="https://ci.example/7",
            options=options,
        ),
        lambda: client.record_deployment(
            "lab", colour="green", stack="shared", services=web, compose=compose, result="failed", actor="alice"
        ),
        lambda: client.record_deployment(
            "lab",
            colour="green",
            stack="shared",
            services=web,
            compose=compose,
            result="succeeded",
            actor="alice",
            options={"resolve_image": "sometimes"},  # 400
        ),
        lambda: client.deployments("lab", colour="green", result="succeeded", limit=5),
        lambda: client.deployments("lab"),
        lambda: client.record_event(
            "lab",
            kind="deploy",
            actor="alice",
            result="converged",
            detail={"stack": "shared", "services": [{"name": "web", "seconds": 1.5}]},
            job_url="https://ci.example/7",
        ),
        lambda: client.record_event("lab", kind="rollback", actor="alice", result="rolled_back", detail={}),
        lambda: client.record_event("lab", kind="switch", actor="bob", result="Bad!", detail={}),  # 400
        lambda: wrong.record_event("lab", kind="switch", actor="bob", result="failed", detail={}),  # 401
        lambda: client.switch("lab", "blue", "green", actor="bob", reason="release", job_url="https://ci.example/8"),
        lambda: client.release_lock("lab", owner="alice@ci:1"),
        lambda: client.release_lock("lab", owner="alice@ci:1"),  # nothing to release
        lambda: client.acquire_lock("lab", owner="carol@ci:3", purpose="rollback web", ttl=60),
        lambda: client.release_lock("lab", force=True, actor="dave"),
        lambda: client.history("lab", limit=50),
    ]
    for step in steps:
        with contextlib.suppress(DeployerError):
            step()

    seen = _check_exchanges(contract, session, bad_bodies=3)
    lock = "/v1/environments/{name}/lock"
    expected = {
        (f"GET {lock}", "200"),
        (f"POST {lock}", "200"),
        (f"POST {lock}", "409"),
        (f"POST {lock}", "400"),
        (f"POST {lock}", "404"),
        (f"POST {lock}", "401"),
        (f"DELETE {lock}", "200"),
        (f"DELETE {lock}", "409"),
        (f"DELETE {lock}", "401"),
        ("POST /v1/environments/{name}/events", "201"),
        ("POST /v1/environments/{name}/events", "400"),
        ("POST /v1/environments/{name}/events", "401"),
        ("POST /v1/environments/{name}/deployments", "400"),
        ("GET /v1/environments/{name}/deployments", "200"),
    }
    assert expected <= seen, expected - seen
    kinds = {e["kind"] for e in client.history("lab")}
    assert {"locked", "unlocked", "lock_forced", "deploy", "rollback", "switched", "deployed"} <= kinds


def test_method_not_allowed_follows_the_contract(contract: dict[str, Any], state: Any) -> None:
    answer = requests.delete(f"{state.url}/v1/environments/lab", timeout=5)
    assert answer.status_code == 405
    schema = contract["components"]["responses"]["MethodNotAllowed"]["content"]["application/json"]["schema"]
    assert validate(contract, schema, answer.json()) == []
    assert json.loads(answer.content)["error"]
