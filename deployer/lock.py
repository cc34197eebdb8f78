"""The environment lock, held in the environment-state service while a deploy or switch runs.

A lock has an owner, a purpose and an expiry. While held, a heartbeat renews it every third of
its time to live, so a crashed holder frees the environment within one TTL and a live one keeps it.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from deployer.errors import DeployerError, LockHeldError

DEFAULT_TTL = 60.0
DEFAULT_WAIT = 300.0


def actor(environ: Mapping[str, str]) -> str:
    """Who is acting: the GitLab user in CI, else the local user."""
    return environ.get("GITLAB_USER_LOGIN") or getpass.getuser()


def new_owner(actor: str) -> str:
    """A lock owner id that names who and where, unique per process and call."""
    return f"{actor}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextmanager
def held(
    state: Any,
    environment: str,
    *,
    purpose: str,
    actor: str,
    job_url: str | None = None,
    ttl: float = DEFAULT_TTL,
    wait: float = DEFAULT_WAIT,
    say: Callable[[str], None] = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[str]:
    """Hold the environment's lock for the ``with`` block; yields the owner id.

    Waits up to ``wait`` seconds for another holder, then raises LockHeldError (exit 4) naming it.
    """
    owner = new_owner(actor)
    deadline = clock() + wait
    announced = False
    while True:
        try:
            state.acquire_lock(environment, owner=owner, purpose=purpose, ttl=ttl, actor=actor, job_url=job_url)
            break
        except LockHeldError as exc:
            remaining = deadline - clock()
            if remaining <= 0:
                raise LockHeldError(f"{exc} (waited {wait:g} s)", holder=exc.holder) from None
            if not announced:
                say(f"waiting up to {wait:g} s for the lock: {exc}")
                announced = True
            sleep(min(1.0, remaining))
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(ttl / 3):
            try:
                state.acquire_lock(environment, owner=owner, purpose=purpose, ttl=ttl, actor=actor, job_url=job_url)
            except DeployerError as exc:  # the holder learns at release; keep trying meanwhile
                say(f"warning: could not renew the lock: {exc}")

    beat = threading.Thread(target=heartbeat, name="lock-heartbeat", daemon=True)
    beat.start()
    try:
        yield owner
    finally:
        stop.set()
        beat.join(timeout=5)
        try:
            state.release_lock(environment, owner=owner)
        except DeployerError as exc:
            say(f"warning: could not release the lock (it expires in {ttl:g} s): {exc}")
