"""A small, bounded HTTP load generator for the lab's switch demo and tests (keep-alive, loopback).

It only targets the lab's HAProxy front (a loopback URL); every loop stops by itself.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_SECONDS = 300.0


@dataclass
class LoadResult:
    """What the load saw."""

    sent: int = 0
    failed: int = 0
    bodies: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        """One line for humans."""
        rate = self.sent / self.seconds if self.seconds else 0.0
        answers = ", ".join(f"{body!r}: {n}" for body, n in sorted(self.bodies.items()))
        return f"{self.sent} requests sent, {self.failed} failed, {rate:.0f}/s ({answers})"


class Load:
    """``connections`` keep-alive clients sending GET requests to ``url`` until stopped."""

    def __init__(
        self,
        url: str,
        *,
        connections: int = 4,
        max_seconds: float = MAX_SECONDS,
        label: Callable[[str], str] | None = None,
    ) -> None:
        """``label`` names an answer's body in the counts (the version a JSON document says, say); the body itself by
        default. A body it cannot label (it raises ValueError) counts as a failed request."""
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the lab's load generator only targets loopback")
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path or "/"
        self.connections = connections
        self.label = label
        self.max_seconds = min(max_seconds, MAX_SECONDS)
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def _worker(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
        deadline = self._started + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                body = response.read().decode(errors="replace").strip()
                ok = response.status == 200
                error = None if ok else f"HTTP {response.status}"
                if ok and self.label is not None:
                    try:
                        body = self.label(body)
                    except ValueError as exc:
                        ok, error = False, f"unexpected answer: {exc}"
            except (OSError, http.client.HTTPException) as exc:
                ok, body, error = False, "", f"{type(exc).__name__}: {exc}"
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            with self._lock:
                self.result.sent += 1
                if ok:
                    self.result.bodies[body] = self.result.bodies.get(body, 0) + 1
                else:
                    self.result.failed += 1
                    if len(self.result.errors) < 10:
                        self.result.errors.append(error or "")
        conn.close()

    def start(self) -> Load:
        """Start the clients."""
        self._started = time.monotonic()
        for index in range(self.connections):
            thread = threading.Thread(target=self._worker, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> LoadResult:
        """Stop the clients and return what they saw."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.result.seconds = time.monotonic() - self._started
        return self.result

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
