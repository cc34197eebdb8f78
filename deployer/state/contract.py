"""The environment-state contract's constants (``contract.yaml`` in words a program can use).

One module for the client, the server and the deployer's compose checks, so that what one side sends
the other side accepts by construction. Nothing here does I/O or imports anything of the deployer:
every side may import it.

The regexes are checked with ``autocore.names.is_valid``: the whole value must match (``fullmatch``,
so ``$`` never lets a trailing newline through, as in JSON Schema's ``$`` in ``contract.yaml``) and no
control character may hide in it, on the server (``validation``) and in the client (``answers``) alike.
"""

from __future__ import annotations

import re

# ---- environments and colours

COLOURS = ("blue", "green")
# What a deploy may target: the live colour, the idle one, or a colour by name.
DEPLOY_TARGETS = ("live", "idle", *COLOURS)
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # EnvironmentName

# ---- clusters

# The canonical text of an IP literal (``str(ipaddress.ip_address(...))``), with an optional IPv6 zone
# (``fe80::1%eth0``). ipaddress takes any text after the ``%``, a newline or ``$(id)`` included; a zone
# here is an interface name or number, nothing that could end a line or reach a shell.
ADDRESS_RE = re.compile(r"[0-9A-Fa-f:.]{2,45}(%[A-Za-z0-9_.-]{1,64})?")
# A cluster's other Swarm managers (OtherManagers): Swarm clusters run 3, 5 or 7 managers at most.
MAX_OTHER_MANAGERS = 6

# ---- deployments

# StackName and ServiceName: Docker's own rule for stack and service names, at most 63 characters.
STACK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_STACK = 63
# The service names a compose file may define (Docker's rule, checked by deployer.compose). Unlike
# ServiceName it has no length limit: a name of 64+ characters loads, then its record gets a 400.
COMPOSE_SERVICE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
RESULT_RE = re.compile(r"^[a-z][a-z_]{0,31}$")  # Result: succeeded, failed, rolled_back, timed_out, ...
MAX_RESULT = 32
MAX_IMAGE = 512
MAX_REPLICAS = 10_000  # what the server accepts in a DeploymentRequest
MAX_COMPOSE_FILE = 255  # the length of ComposeFile.file
RESOLVE_IMAGE = ("always", "changed", "never")  # DeploymentOptions.resolve_image
DEPLOY_OPTIONS = ("resolve_image", "with_registry_auth", "prune")
DEPLOY_FLAGS = ("with_registry_auth", "prune")  # the boolean ones

# ---- a service's documentation (ServiceDocs), from its compose deploy.labels

DOCS_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")  # a service's API version, e.g. v1
MAX_DOCS_VERSION = 63
MAX_URL = 2048  # HttpsUrl
# deploy.labels through which a service says where its docs are; recorded for `auto-docs build --from-env`.
DOCS_LABELS = {"auto.docs.version": "version", "auto.docs.spec": "spec_url", "auto.docs.url": "docs_url"}

# ---- free text: actors, lock owners, purposes, job URLs, reasons

# Actor, LockOwner, a lock's purpose and OptionalJobURL must not contain these (one-line values).
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_ACTOR = 200
MAX_OWNER = 200
MAX_PURPOSE = 500
MAX_JOB_URL = 2000
MAX_REASON = 1000  # a switch's reason (any text, control characters included)

# ---- locks and the audit trail

MAX_TTL = 3600  # seconds a lock may be taken for at once (LockRequest.ttl_seconds)
MIN_TTL = 1
EVENT_KINDS = (
    "created",
    "updated",
    "switched",
    "deployed",
    "locked",
    "unlocked",
    "lock_forced",
    "deploy",
    "rollback",
    "switch",
)
AUDIT_KINDS = ("deploy", "rollback", "switch")  # recorded by the deployer through POST .../events
MAX_DETAIL = 64 * 1024  # bytes of an audit event's detail as compact JSON
RESERVED_DETAIL = ("revision", "result", "job_url")  # keys of an audit event's detail the service sets itself

# ---- the protocol

MAX_BODY = 1024 * 1024  # bytes of a request body; more is a 413
DEFAULT_LIMIT = 50  # entries of a list when the request gives no ``limit``
MAX_LIMIT = 1000
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # Timestamp: UTC, seconds precision
TIMESTAMP_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII without spaces: goes into a header unchanged
MAX_ID = 2**63 - 1  # ids and revisions are SQLite integers
MAX_BODY_DEPTH = 128  # nesting levels of a request body (an audit event's detail is the deepest part)
# An answer nests a request's detail a few levels deeper (events[i].detail); the client allows more.
MAX_ANSWER_DEPTH = 256
MAX_INT_DIGITS = 100  # digits of an integer in a body or an answer (ids need 19)

# ---- idempotent writes

# Optional on every write: the same key (and the same request) within IDEMPOTENCY_TTL seconds is
# answered with the stored answer of the first, which is not applied again; the replay carries
# REPLAYED_HEADER: true. The client sends one key per logical write and reuses it when it retries.
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_KEY_RE = re.compile(r"[A-Za-z0-9_.:-]{8,128}")
IDEMPOTENCY_TTL = 24 * 3600
# What the client accepts as a replica count in an answer: Docker's bound, laxer than MAX_REPLICAS.
MAX_REPLICAS_IN_ANSWER = 2**31 - 1


def other_colour(colour: str) -> str:
    """``green`` for ``blue`` and vice versa."""
    return "green" if colour == "blue" else "blue"
