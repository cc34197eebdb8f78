"""The deployer's exceptions and the exit codes the CLI maps them to.

Library code raises these; only ``deployer.cli`` prints them. Each message is one
line that says what went wrong and what to do, and never contains a secret.
"""

from __future__ import annotations

from typing import Any

from autocore.errors import EXIT_BAD_INPUT as EXIT_BAD_INPUT  # re-exported: every exit code in one place
from autocore.errors import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from autocore.errors import EXIT_OK as EXIT_OK
from autocore.errors import ToolkitError

EXIT_NOT_CONVERGED = 3  # the deploy did not converge: rolled back, crashed or timed out
EXIT_REFUSED = 4  # refused: TLS, authentication, unreachable or inconsistent state


class DeployerError(ToolkitError):
    """Base of every error the deployer raises on purpose."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(DeployerError):
    """Bad input or configuration (missing file, bad flag value, unknown environment)."""

    exit_code = EXIT_BAD_INPUT


class UnknownEnvironmentError(ConfigError):
    """The environment-state service does not know the environment asked for."""


class NotConvergedError(DeployerError):
    """The deploy did not converge: tasks crashed, Swarm rolled back, or it timed out."""

    exit_code = EXIT_NOT_CONVERGED


class OperationFailed(NotConvergedError):
    """A deploy or rollback that did not converge; carries its report (``deployer.deploy.Report``) for ``--json``."""

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report

    def json_report(self) -> dict[str, Any]:
        return self.report.as_dict()


class RefusedError(DeployerError):
    """Something refused us or could not be trusted; nothing was changed by us."""

    exit_code = EXIT_REFUSED


class StateUnavailableError(RefusedError):
    """The environment-state service could not be reached after bounded retries."""


class StateAuthError(RefusedError):
    """The environment-state service refused the bearer token (401/403)."""


class StateConflictError(RefusedError):
    """A compare-and-set on the environment-state service lost (HTTP 409)."""


class InvalidStateError(RefusedError):
    """The environment-state service answered something that fails validation."""


class TLSError(RefusedError):
    """TLS verification failed, or the TLS material is unusable."""


class DockerUnavailableError(RefusedError):
    """The Docker Engine of the live cluster could not be reached."""


class LockHeldError(RefusedError):
    """Somebody else holds the environment's lock (HTTP 409 on the lock); ``holder`` is that lock.

    ``holder`` is a ``deployer.state.client.Lock`` (None only when it could not be told).
    """

    def __init__(self, message: str, holder: Any = None) -> None:
        super().__init__(message)
        self.holder = holder


class HAProxyError(RefusedError):
    """HAProxy's runtime API refused a command or could not be reached."""
