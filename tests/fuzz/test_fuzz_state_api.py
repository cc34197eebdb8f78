"""Fuzz the real state server on loopback: every route, random methods, bodies, headers and queries. Whatever
arrives, the answer is a documented status with a one-line JSON error, never a 500, and the server stays up."""

from __future__ import annotations

import http.client
import json
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployer.state.server import make_server
from tests.fuzz.strategies import documents, nasty_text

TOKEN = "fuzz-token-0123456789"
DOCUMENTED = {200, 201, 400, 401, 403, 404, 405, 408, 409, 411, 413, 415, 422, 423}
NAMES = st.sampled_from(["lab", "prod", "x" * 64, "LAB", "la b", "%00", "..", "lab%0a"]) | nasty_text.map(
    lambda t: t.replace("/", "").replace("?", "").replace("#", "") or "e"
)
PATHS = st.one_of(
    st.just("/v1/health"),
    st.just("/v1/environments"),
    NAMES.map(lambda n: f"/v1/environments/{n}"),
    st.tuples(NAMES, st.sampled_from(["switch", "deployments", "history", "lock", "events", "nope"])).map(
        lambda p: f"/v1/environments/{p[0]}/{p[1]}"
    ),
    nasty_text.map(lambda t: "/" + t.replace(" ", "%20").replace("\n", "").replace("\r", "")),
)
QUERIES = st.one_of(
    st.just(""),
    st.sampled_from(["?limit=1", "?limit=0", "?limit=-1", "?limit=²", "?limit=99999999999999", "?force=true"]),
    st.sampled_from(["?access_token=secret", "?a=1&a=2", "?limit=1&stack=%0a", "?actor=%1b[31m"]),
)
BODIES = st.one_of(
    st.none(),
    documents.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=200),
    st.just(b"[" * 5000),
    st.just(b'{"live_colour": "green", "clusters": {}}'),
    st.just(b'{"expected_live": "blue", "new_live": "green", "actor": "a\\nb"}'),
)


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    with tempfile.TemporaryDirectory() as tmp:
        server = make_server(str(Path(tmp) / "state.db"), "127.0.0.1", 0, TOKEN, access_log=False)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)


@given(
    method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]),
    path=PATHS,
    query=QUERIES,
    body=BODIES,
    authorised=st.booleans(),
    content_type=st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1", None]),
)
def test_any_request_gets_a_documented_answer(
    server_port: int, method: str, path: str, query: str, body: bytes | None, authorised: bool, content_type: str | None
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server_port, timeout=10)
    headers = {"Authorization": f"Bearer {TOKEN}"} if authorised else {}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        # Bytes a client cannot put on the request line are percent-encoded, as any client would send them.
        connection.request(method, quote(path + query, safe="/%?=&"), body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
    finally:
        connection.close()
    assert answer.status in DOCUMENTED, (answer.status, method, path, query, data[:200])
    if answer.status >= 400 and method != "HEAD":
        error = json.loads(data)["error"]
        assert isinstance(error, str) and "\n" not in error and TOKEN not in error
    health = http.client.HTTPConnection("127.0.0.1", server_port, timeout=10)
    try:
        health.request("GET", "/v1/health")
        assert health.getresponse().status == 200  # still serving
    finally:
        health.close()
