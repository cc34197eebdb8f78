"""An overall deadline for each request of the environment-state client: connect, send, headers, body.

requests' timeouts bound each socket operation, not the exchange: a server that sends one byte a
second never trips a 10-second read timeout, and the client hung forever. Here the transport opens a
:class:`Guard` around each request (:func:`guarded`); the connections of :class:`DeadlineAdapter`
register with the current thread's guard when they connect and when they send; and one watchdog
thread hangs up the registered connections of a guard whose deadline passed. The blocked read then
fails, and the transport, seeing ``guard.fired``, reports the deadline rather than a network error.

A guard only ever touches connections registered with it and still belonging to it (a pooled
connection taken by another request belongs to that request's guard), and the sockets it keeps for
the TLS handshake (before urllib3 hands out the TLS socket) are duplicates it owns and closes.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()


class Guard:
    """The deadline (``time.monotonic()``) of one request and the connections it may hang up."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self.active = True
        self._lock = threading.Lock()
        self._conns: list[Any] = []
        self._socks: list[socket.socket] = []  # duplicates of connecting sockets, owned by the guard

    def watch(self, conn: Any, sock: socket.socket | None = None) -> None:
        """Register ``conn`` (and, while it connects, a duplicate of its raw ``sock``)."""
        own = None
        if sock is not None:
            with contextlib.suppress(OSError):
                own = sock.dup()  # the TLS socket detaches the raw one: keep a handle of our own
        with self._lock:
            if not self.active:
                if own is not None:
                    own.close()
                return
            conn._auto_state_guard = self
            self._conns.append(conn)
            if own is not None:
                self._socks.append(own)

    def fire(self) -> None:
        """The deadline passed: hang up every connection still of this request."""
        with self._lock:
            if not self.active:
                return
            self.fired = True
            socks = list(self._socks)
            socks += [c.sock for c in self._conns if getattr(c, "_auto_state_guard", None) is self and c.sock]
        for sock in socks:
            with contextlib.suppress(OSError):
                # socket.socket.shutdown also for TLS sockets: SSLSocket.shutdown would pull the TLS
                # state from under the reading thread.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        """The request is over: the watchdog leaves its connections alone from now on."""
        with self._lock:
            self.active = False
            for conn in self._conns:
                if getattr(conn, "_auto_state_guard", None) is self:
                    conn._auto_state_guard = None
            socks, self._socks, self._conns = self._socks, [], []
        for sock in socks:
            sock.close()
        _WATCHDOG.finished()


class _Watchdog:
    """One daemon thread that fires the guards whose deadline passed, earliest first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Guard]] = []
        self._order = itertools.count()
        self._active = 0
        self._thread: threading.Thread | None = None

    def add(self, guard: Guard) -> None:
        with self._cond:
            self._active += 1
            # Finished guards leave the heap when they reach its top; rebuild it before they pile up.
            if len(self._heap) > 2 * self._active + 1024:
                self._heap = [entry for entry in self._heap if entry[2].active]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (guard.deadline, next(self._order), guard))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="auto-state-deadline", daemon=True)
                self._thread.start()
            self._cond.notify()

    def finished(self) -> None:
        with self._cond:
            self._active -= 1

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and not self._heap[0][2].active:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        guard = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            guard.fire()


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def guarded(deadline: float) -> Iterator[Guard]:
    """Run a request of this thread under ``deadline`` (``time.monotonic()``); yields its guard."""
    guard = Guard(deadline)
    previous = getattr(_local, "guard", None)
    _local.guard = guard
    _WATCHDOG.add(guard)
    try:
        yield guard
    finally:
        _local.guard = previous
        guard.close()


def _current() -> Guard | None:
    return getattr(_local, "guard", None)


class _Watched:
    """Mixed into urllib3's connections: register with the current request's guard."""

    sock: Any

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        guard = _current()
        if guard is not None:
            guard.watch(self, sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        guard = _current()
        if guard is not None:
            guard.watch(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections a :class:`Guard` can hang up."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
