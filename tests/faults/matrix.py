"""The fault matrix as data: one row per fault the toolkit is tested against on the lab (issue 16).

Each row is what README's table says (``python -m tests.faults.readme_table --write``) and what the row's test
(``test_case_NN_…`` in this package) asserts: the exit code, and whether the live colour keeps serving through
HAProxy while the fault lasts (every case but the one that takes HAProxy itself down). tests/faults/test_matrix.py
fails when a row has no test, a test has no row, or README's table is not this data.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer.converge import UNSCHEDULABLE_GRACE_SECONDS


@dataclass(frozen=True)
class Row:
    """One fault: what is broken, what the toolkit does about it, its exit code, what the user does next."""

    number: int
    fault: str
    toolkit: str
    exit_code: int
    user: str
    live_served: bool = True  # False only when the fault takes the front (HAProxy) itself down


ROWS: tuple[Row, ...] = (
    Row(
        1,
        "a worker dies mid-deploy",
        "names the node once Swarm reports it down; Swarm moves its tasks to the other nodes and the deploy converges "
        "(when no node can take them: fails after the grace, naming the node)",
        0,
        "nothing; bring the worker back (what still runs on it stops when its daemon returns)",
    ),
    Row(
        2,
        "the manager's daemon restarts while the deployer waits",
        "says the Engine is unreachable and keeps waiting until it answers again, then judges the deploy as usual",
        0,
        "nothing; a manager still away at `--timeout` ends it as timed out (exit 3, recorded): check the cluster",
    ),
    Row(
        3,
        "a worker cannot pull the image (the registry is down)",
        "Swarm rejects the tasks that cannot pull; after three the deploy fails with Swarm's reason; recorded as "
        "failed",
        3,
        "bring the registry back (or fix the credentials `--with-registry-auth` hands the nodes), deploy again",
    ),
    Row(
        4,
        "the image does not exist",
        "Swarm rejects the tasks; after three failed tasks the deploy fails with Swarm's reason (`No such image`), "
        "recorded as failed",
        3,
        "fix the image name or push the image, deploy again",
    ),
    Row(
        5,
        "a crash-looping new version",
        "fails after three crashed tasks; with `--rollback-on-failure` the previous version runs again; recorded",
        3,
        "fix the version (its logs: `docker service logs`), deploy again",
    ),
    Row(
        6,
        "a version whose health check never passes",
        "Swarm stops each unhealthy task (it ends `complete`, exit 0); after three the deploy fails saying so, and "
        "with `--rollback-on-failure` removes or rolls back what it changed",
        3,
        "fix the health check or the service, deploy again",
    ),
    Row(
        7,
        "the deploy times out",
        "stops waiting at `--timeout`, with each service's state and Swarm's message; recorded as timed out",
        3,
        "see the message (a slow start: raise `--timeout`), deploy again",
    ),
    Row(
        8,
        "the state service is down when the deploy starts",
        "bounded retries, then refuses before touching Swarm or the lock; nothing deployed",
        4,
        "bring the state service back, deploy again",
    ),
    Row(
        9,
        "the state service goes down after the stack was deployed, before it is recorded",
        "keeps the deploy going (the lock heartbeat warns); the record is retried with the same idempotency key and "
        "written once the service is back",
        0,
        "nothing when it is back within `AUTO_STATE_DEADLINE` (60 s; the record alone is retried that long); else "
        "deploy again (the warning says so)",
    ),
    Row(
        10,
        "the state service answers slowly, or with garbage",
        "each call bounded by `AUTO_STATE_TIMEOUT` / `AUTO_STATE_DEADLINE`; an answer that fails validation is "
        "refused; nothing deployed",
        4,
        "fix the service or the proxy in front of it, deploy again",
    ),
    Row(
        11,
        "the state service's disk is full",
        "the service rolls the write back and answers 507 saying its disk is full (reads still work); the deploy is "
        "refused at once, before Swarm; nothing deployed",
        4,
        "free space on the state service's volume, deploy again",
    ),
    Row(
        12,
        "two pipelines deploy to the same environment at once",
        "the second waits for the lock (`--lock-wait`), then deploys; never both at once",
        0,
        "nothing; with `--lock-wait 0` the second exits 4 naming the holder",
    ),
    Row(
        13,
        "a switch starts while a deploy holds the lock",
        "the switch waits up to `--lock-wait`, then refuses naming the deploy; traffic untouched",
        4,
        "switch again when the deploy is done (or with a longer `--lock-wait`)",
    ),
    Row(
        14,
        "the holder of the lock is killed",
        "the lock stays until its TTL (`--lock-ttl`) passes; the next deploy waits for it and takes it over",
        0,
        "nothing (or `auto-deploy lock release` at once); the killed deploy was not recorded: deploy it again",
    ),
    Row(
        15,
        "the switch loses its compare-and-set",
        "traffic is put back on the old colour; the live colour is the winner's",
        4,
        "check who switched (`auto-deploy history`), switch again if still wanted",
    ),
    Row(
        16,
        "the idle colour is partly unhealthy (one node down) when a switch is asked for",
        "waits for the idle colour's services; the task Swarm cannot place again fails it after the grace, naming "
        "the node that is down; traffic not moved",
        3,
        "bring the node back (or scale the service to what the colour can run), switch again",
    ),
    Row(
        17,
        "HAProxy is reloaded during a switch",
        "an admin state a reload took away (an older server-state file) is set again, once right after traffic "
        "moved and once 0.5 s later, and the server-state file is written; the switch completes, no request fails "
        "(`option idle-close-on-response`)",
        0,
        "nothing",
    ),
    Row(
        18,
        "HAProxy is down when a switch is asked for",
        "refuses at once, before replaying anything or moving traffic (HAProxy's admin socket does not answer); "
        "the live colour is unchanged",
        4,
        "start HAProxy, switch again",
        live_served=False,
    ),
    Row(
        19,
        "the link between the manager and a worker is cut during a deploy",
        "names the node once Swarm reports it down; Swarm moves its tasks to the nodes it still reaches and the "
        "deploy converges",
        0,
        "nothing; mend the link (the worker rejoins by itself)",
    ),
    Row(
        20,
        "the client certificate has expired, or the CA is wrong",
        "an expired (or not yet valid) client certificate is named, with its date, before any connection; a wrong CA "
        "fails TLS with the manager; nothing deployed",
        4,
        "renew the client certificate or fix the CA (`AUTO_DOCKER_*`), deploy again",
    ),
    Row(
        21,
        "a task Swarm cannot schedule (host port held, no node meets the placement, too much memory reserved)",
        f"fails after a {UNSCHEDULABLE_GRACE_SECONDS:g} s grace (not at `--timeout`) with Swarm's own reason for each "
        "service; recorded as failed",
        3,
        "free the port, fix the constraint or the reservation, deploy again",
    ),
)

BY_NUMBER: dict[int, Row] = {row.number: row for row in ROWS}


def row(number: int) -> Row:
    """The row of case ``number``."""
    return BY_NUMBER[number]
