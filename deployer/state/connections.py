"""How the environment-state server holds its connections: a real listen backlog, a bounded pool of
workers, and deadlines on every read, so that a crowd of clients queues instead of timing out and a
slow or silent client cannot keep a worker.

* The listen backlog is ``request_queue_size`` (1,024; the kernel may cap it at ``somaxconn``). The
  socketserver default of 5 made a burst of 200 connections lose a quarter of them.
* At most ``max_workers`` connections are served at once, each by a thread of its own. When all are
  busy the accept loop waits for one to finish, and further connections wait in the kernel's backlog:
  no thread is started for them.
* While connections wait (the server is *congested*), every answer closes its keep-alive connection
  (``Connection: close``), so that the workers go round the queue instead of staying with whoever
  connected first, and connections that have been idle for ``IDLE_GRACE`` seconds, waiting for a
  request that does not come, are hung up. The grace matters: a client sends its next request right
  after an answer, and a connection hung up under it fails that request.
* Reads have deadlines (``DeadlineReader``): the whole request (line, headers, body) must arrive within
  one deadline, however slowly its bytes trickle in; waiting for the next request on a keep-alive
  connection has another. Writes are bounded by the socket timeout, which ``sendall`` applies to the
  whole answer.
"""

from __future__ import annotations

import contextlib
import io
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LISTEN_BACKLOG = 1024
MAX_WORKERS = 64
IDLE_GRACE = 1.0  # seconds a connection must have been idle before congestion may hang it up
_POLL = 0.05  # seconds between looks at a stop request while the accept loop waits for a worker
_CLOSE_WAIT = 5.0  # seconds server_close() waits for the workers to finish their answers


class DeadlineReader(io.RawIOBase):
    """A socket's reading side whose every ``recv`` ends by ``deadline`` (``time.monotonic()``).

    ``socket.makefile`` only bounds each ``recv``, so a client sending one byte every few seconds
    could hold a worker for hours; here each ``recv`` gets at most what is left of the deadline.
    """

    def __init__(self, sock: socket.socket, io_timeout: float) -> None:
        super().__init__()
        self._sock = sock
        self._io_timeout = io_timeout
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the request did not arrive before its deadline")
            self._sock.settimeout(min(remaining, self._io_timeout))
        try:
            return self._sock.recv_into(buffer)
        finally:
            if self.deadline is not None:
                self._sock.settimeout(self._io_timeout)  # what the answer's sendall is bounded by


def _hang_up(conn: socket.socket) -> None:
    """Shut the connection down under the thread blocked reading it (that read then sees the end).

    ``socket.socket.shutdown`` also for TLS: ``SSLSocket.shutdown`` would drop the TLS state under the
    reading thread's feet.
    """
    with contextlib.suppress(OSError):  # closed already
        socket.socket.shutdown(conn, socket.SHUT_RDWR)


def _has_data(conn: socket.socket) -> bool:
    """Whether bytes of a next request are waiting (then the connection is not idle after all)."""
    try:
        if hasattr(conn, "pending") and conn.pending():
            return True
        readable, _, _ = select.select([conn], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(readable)


class BoundedHTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with a listen backlog, at most ``max_workers`` threads, and idle tracking."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True
    block_on_close = False  # server_close() joins the workers itself, within _CLOSE_WAIT

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_workers: int = MAX_WORKERS,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be 1 or more")
        self.max_workers = max_workers
        self._slots = threading.BoundedSemaphore(max_workers)
        self._lock = threading.Lock()
        self._idle: dict[socket.socket, float] = {}  # connection -> when it began to wait (monotonic)
        self._workers: set[threading.Thread] = set()
        self._waiting = False  # the accept loop waits for a worker: connections are queued
        self._stopping = False
        super().__init__(address, handler)

    @property
    def congested(self) -> bool:
        """True while connections wait for a worker: answers then close their connections.

        The accept loop's waiting flag flickers off each time a worker frees up; connections waiting in
        the listen backlog (the listening socket is readable) say the same more steadily.
        """
        if self._waiting:
            return True
        try:
            readable, _, _ = select.select([self.socket], [], [], 0)
        except (OSError, ValueError):  # closed: nobody waits any more
            return False
        return bool(readable)

    # ---- the accept loop's side

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a worker thread once one of the ``max_workers`` is free."""
        if not self._slots.acquire(blocking=False):
            self._waiting = True
            try:
                self.reclaim_idle()
                while not self._slots.acquire(timeout=_POLL):
                    if self._stopping:
                        self.shutdown_request(request)
                        return
                    self.reclaim_idle()
            finally:
                self._waiting = False
        thread = threading.Thread(
            target=self._work, args=(request, client_address), name="auto-state-worker", daemon=True
        )
        with self._lock:
            self._workers.add(thread)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: refuse this connection, keep serving
            with self._lock:
                self._workers.discard(thread)
            self._slots.release()
            self.shutdown_request(request)

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())
            self._slots.release()

    # ---- the workers' side

    def mark_idle(self, conn: socket.socket) -> None:
        """The connection waits for its next request: it may be hung up when others queue."""
        with self._lock:
            if not self._stopping:
                self._idle[conn] = time.monotonic()
                return
        _hang_up(conn)  # the server is stopping: no next request will be served

    def mark_busy(self, conn: socket.socket) -> None:
        """A request arrived on the connection (or it is done)."""
        with self._lock:
            self._idle.pop(conn, None)

    def reclaim_idle(self) -> None:
        """Hang up the connections idle for IDLE_GRACE seconds or more that have sent nothing since."""
        limit = time.monotonic() - IDLE_GRACE
        with self._lock:
            idle = [conn for conn, since in self._idle.items() if since <= limit and not _has_data(conn)]
            for conn in idle:
                del self._idle[conn]
        for conn in idle:
            _hang_up(conn)

    # ---- stopping

    def shutdown(self) -> None:
        self._stopping = True
        super().shutdown()

    def server_close(self) -> None:
        """Stop listening, hang up idle keep-alive connections, and give the workers a moment to finish."""
        self._stopping = True
        super().server_close()
        with self._lock:
            idle, self._idle = list(self._idle), {}
            workers = list(self._workers)
        for conn in idle:
            _hang_up(conn)
        deadline = time.monotonic() + _CLOSE_WAIT
        for thread in workers:
            thread.join(max(0.0, deadline - time.monotonic()))
