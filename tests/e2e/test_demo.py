"""``make demo`` end to end on the lab: the entry point it runs (``python -m deployer.lab.demo``), as a subprocess.

Run once interrupted with SIGINT during its deploy step, then whole (starting again from the interrupted run's
leftovers, as a user's re-run does). Every step must report
``ok``, the switch under load must lose no request, and the portal's landing page (the generated HTML) must list
the new service at v2, live. Afterwards the demo's stacks are removed and blue made live again, as the rest of
the suite expects the lab.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployer.lab import demo_portal
from deployer.lab import lab as lab_module
from deployer.lab.demo_commands import SLUG
from deployer.lab.layout import LIVE_COLOUR, LabPaths, lab_dir
from tests.support import ROOT, Lab, http_get, unavailable

pytestmark = pytest.mark.lab

DEMO = [sys.executable, "-m", "deployer.lab.demo"]
STEPS = 8
TIMEOUT = 420
STEP_OK = re.compile(r"^\[(\d+)/(\d+)\] .+ \.\.\. ok \(\d+\.\d s\)$", re.M)


def work_dir(lab: Lab) -> Path:
    return LabPaths(lab_dir(lab.env)).root / "demo"


def run_demo(lab: Lab) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(DEMO, env=lab.env, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    seconds = time.monotonic() - started
    print(proc.stdout, proc.stderr, f"demo: {seconds:.0f} s", sep="\n")
    return proc, seconds


def restore(lab: Lab) -> None:
    """The lab as the rest of the suite wants it: no demo stack, no portal server, blue live (HAProxy's
    configuration written for it)."""
    demo_portal.stop_server(work_dir(lab) / "portal.pid")
    lab.remove_stack(SLUG)
    if lab.live_colour() != LIVE_COLOUR:
        proc = lab.cli("switch", "--env", "lab", "--to", LIVE_COLOUR, "--lock-wait", "60")
        assert proc.returncode == 0, proc.stderr
        lab_module.up(workers=0)


@dataclass
class Interrupted:
    """The demo interrupted with SIGINT during its deploy step, and what was found right after it."""

    returncode: int
    out: str
    err: str
    group_left: bool  # a process of the demo's group still exists
    lock_status: str
    resolve_code: int
    portal_pid_left: bool


def interrupt_demo(lab: Lab) -> Interrupted:
    proc = subprocess.Popen(
        DEMO, env=lab.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, ""):  # step 3's line, then its note: step 4 (the deploy) has begun
            if line.startswith("[3/8]"):
                proc.stdout.readline()
                break
        else:
            pytest.fail(f"the demo ended before its deploy step: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(3)  # auto-deploy is waiting for its service, holding the environment's lock
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        os.killpg(proc.pid, 0)
        group_left = True
    except ProcessLookupError:
        group_left = False
    status = lab.cli("lock", "status", "--env", "lab")
    return Interrupted(
        proc.returncode,
        out,
        err,
        group_left,
        status.stdout + status.stderr if status.returncode == 0 else f"exit {status.returncode}: {status.stderr}",
        lab.cli("resolve", "--env", "lab").returncode,
        (work_dir(lab) / "portal.pid").exists(),
    )


@pytest.fixture(scope="module")
def runs(lab: Lab) -> Iterator[tuple[Interrupted, tuple[subprocess.CompletedProcess[str], float]]]:
    """The demo interrupted during its deploy, then run whole: the second run starts from what the first left
    (a baked project, its stack half-deployed on the live colour), which is what a user's re-run after Ctrl-C
    meets; a re-run after a whole run starts from the same kind of leftovers (stacks on both colours)."""
    bin_dir = Path(sys.executable).parent
    for tool in ("tox", "cookiecutter"):
        if not (bin_dir / tool).exists():
            unavailable(f"{tool} is not installed next to {sys.executable} (pip install -e '.[test]')")
    try:
        yield interrupt_demo(lab), run_demo(lab)
    finally:
        restore(lab)


def test_an_interrupted_demo_leaves_the_lab_usable(runs: tuple) -> None:
    interrupted, _ = runs
    assert interrupted.returncode == 130, interrupted.err
    assert interrupted.err.splitlines() == [
        "Error: step 4 (deploy v1 to the live colour with auto-deploy): interrupted"
    ], interrupted.err
    assert "Traceback" not in interrupted.out + interrupted.err
    # No process of the demo is left, the lock is free, the lab answers, and nothing serves the portal.
    assert not interrupted.group_left
    assert "not locked" in interrupted.lock_status.lower(), interrupted.lock_status
    assert interrupted.resolve_code == 0
    assert not interrupted.portal_pid_left


def test_the_demo_tells_the_whole_story_after_an_interrupted_one(lab: Lab, runs: tuple) -> None:
    _, (proc, _) = runs
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    steps = STEP_OK.findall(proc.stdout)
    assert steps == [(str(n), str(STEPS)) for n in range(1, STEPS + 1)], proc.stdout
    assert re.search(r"\d+ requests sent, 0 failed", proc.stdout), proc.stdout
    # It started clean from the interrupted run's leftovers: the half-deployed stack removed first.
    assert re.search(rf"removed in [0-9.]+ s: .*{SLUG}_{SLUG}", proc.stdout.split("[2/8]")[0]), proc.stdout

    live = lab.live_colour()
    html = (work_dir(lab) / "portal" / "index.html").read_text()
    row = demo_portal.service_row(html, SLUG)
    assert row is not None and (row["version"], row["status"], row["live colour"]) == ("v2", "published", live)
    status, served = http_get(f"http://127.0.0.1:{demo_portal.DEFAULT_PORTAL_PORT}/", timeout=5)
    assert status == 200 and demo_portal.service_row(served, SLUG) == row
    # The toolkit's guide is in the portal.
    assert (work_dir(lab) / "portal" / "guide").is_dir()
