"""The server at the HTTP level: routing, body limits and JSON error bodies, without the client."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from deployer.state.server import MAX_BODY


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_error(answer: requests.Response, status: int, contains: str = "") -> None:
    assert answer.status_code == status
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    assert list(body) == ["error"]
    assert "\n" not in body["error"]
    assert contains in body["error"]


@pytest.mark.parametrize("path", ["/", "/v2/health", "/v1/environments/", "/v1/environments/lab/nope"])
def test_unknown_route_is_json_404(state: Any, path: str) -> None:
    _assert_error(requests.get(state.url + path, timeout=5), 404, "no such endpoint")


def test_unknown_environment_is_json_404(state: Any) -> None:
    _assert_error(requests.get(state.url + "/v1/environments/x", timeout=5), 404, "unknown environment 'x'")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/environments/lab", "GET, PUT"),
        ("POST", "/v1/health", "GET"),
        ("GET", "/v1/environments/lab/switch", "POST"),
        ("PATCH", "/v1/environments/lab/deployments", "GET, POST"),
    ],
)
def test_wrong_method_is_json_405(state: Any, token: str, method: str, path: str, allow: str) -> None:
    answer = requests.request(method, state.url + path, headers=_auth(token), timeout=5)
    _assert_error(answer, 405, "not allowed")
    assert answer.headers["Allow"] == allow


def test_unsupported_method_is_still_json(state: Any) -> None:
    _assert_error(requests.request("BREW", state.url + "/v1/health", timeout=5), 501)


@pytest.mark.parametrize(
    ("data", "contains"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"live_colour": "blue", "live_colour": "green"}', "duplicate key"),
        (b'{"live_colour": NaN}', "not valid JSON"),
        (b"[]", "body must be a JSON object"),
        (b'{"live_colour": "blue", "clusters": {}, "extra": 1}', "unknown field 'extra'"),
    ],
)
def test_bad_bodies_are_400(state: Any, token: str, data: bytes, contains: str) -> None:
    answer = requests.put(state.url + "/v1/environments/lab", data=data, headers=_auth(token), timeout=5)
    _assert_error(answer, 400, contains)


def test_missing_body_is_400(state: Any, token: str) -> None:
    answer = requests.post(state.url + "/v1/environments/lab/switch", headers=_auth(token), timeout=5)
    _assert_error(answer, 400, "a JSON request body")


def test_too_big_body_is_413(state: Any, token: str) -> None:
    data = b'{"x": "' + b"a" * MAX_BODY + b'"}'
    answer = requests.put(state.url + "/v1/environments/lab", data=data, headers=_auth(token), timeout=5)
    _assert_error(answer, 413, "limit is 1048576")


def test_chunked_body_is_refused(state: Any, token: str) -> None:
    answer = requests.put(state.url + "/v1/environments/lab", data=iter([b"{}"]), headers=_auth(token), timeout=5)
    _assert_error(answer, 400, "chunked")


@pytest.mark.parametrize(
    ("query", "contains"),
    [
        ("limit=0", "limit must be an integer from 1 to 1000"),
        ("limit=1001", "limit must be an integer from 1 to 1000"),
        ("limit=ten", "limit must be"),
        ("colour=red", "colour must be blue or green"),
        ("since=1", "unknown query parameter 'since'"),
        ("limit=1&limit=2", "given twice"),
    ],
)
def test_bad_query_parameters_are_400(state: Any, lab_env: Any, query: str, contains: str) -> None:
    answer = requests.get(f"{state.url}/v1/environments/lab/deployments?{query}", timeout=5)
    _assert_error(answer, 400, contains)


def test_history_limit_bounds(state: Any, lab_env: Any) -> None:
    assert requests.get(f"{state.url}/v1/environments/lab/history?limit=1000", timeout=5).status_code == 200
    _assert_error(requests.get(f"{state.url}/v1/environments/lab/history?limit=1001", timeout=5), 400)


def test_keep_alive_survives_an_unread_body(state: Any, token: str) -> None:
    """A 401 before the body was read closes the connection instead of parsing the body as a request."""
    parts = urlsplit(state.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("PUT", "/v1/environments/lab", body=b'{"live_colour": "blue"}')
    answer = conn.getresponse()
    assert answer.status == 401
    assert answer.getheader("Connection") == "close"
    assert json.loads(answer.read())["error"]
    conn.close()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    for _ in range(3):  # and good requests do reuse the connection
        conn.request("GET", "/v1/health")
        answer = conn.getresponse()
        assert answer.status == 200 and answer.getheader("Connection") is None
        assert json.loads(answer.read()) == {"status": "ok"}
    conn.close()


def test_garbage_request_line_gets_json_400(state: Any) -> None:
    parts = urlsplit(state.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"GET / extra words HTTP/1.1\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Content-Type: application/json" in head
    assert json.loads(body) == {"error": "Bad request syntax ('GET / extra words HTTP/1.1')"}


def test_tls_server_refuses_plain_http(start_state_server: Any, tls_files: Any) -> None:
    secure = start_state_server(certfile=tls_files.cert, keyfile=tls_files.key)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(secure.url.replace("https://", "http://") + "/v1/health", timeout=5)
    assert requests.get(secure.url + "/v1/health", verify=tls_files.ca, timeout=5).json() == {"status": "ok"}
