"""docgen's exceptions and the exit codes the CLI maps them to.

Library code raises these; only ``docgen.cli`` prints them. Each message is one line that says
what went wrong and where (file and line when there is one).
"""

from __future__ import annotations

from autocore.errors import EXIT_BAD_INPUT as EXIT_BAD_INPUT  # re-exported: every exit code in one place
from autocore.errors import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from autocore.errors import EXIT_OK as EXIT_OK
from autocore.errors import ToolkitError

EXIT_INVALID_SPEC = 3  # a spec was read but has validation issues


class DocgenError(ToolkitError):
    """Base of every error docgen raises on purpose."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(DocgenError):
    """Bad input: a spec file that is missing, unreadable or not JSON/YAML."""

    exit_code = EXIT_BAD_INPUT


class InvalidSpecError(DocgenError):
    """A spec was read but is not valid (see the issues)."""

    exit_code = EXIT_INVALID_SPEC


EXIT_UNAVAILABLE = 4  # the environment-state service could not be asked (nothing was built)
EXIT_SITE_FAILED = 5  # the Sphinx build failed; the previous site was left as it was


class UnavailableError(DocgenError):
    """The environment-state service (for ``--from-env``) could not be reached or gave a bad answer."""

    exit_code = EXIT_UNAVAILABLE


class SiteBuildError(DocgenError):
    """The portal's sources are unusable, Sphinx failed, or the result could not be published."""

    exit_code = EXIT_SITE_FAILED
