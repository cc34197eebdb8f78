"""pipelines' exceptions and the exit codes the CLI maps them to.

Library code raises these; only ``pipelines.cli`` prints them. Each message is one line that says
what went wrong and where (file and line when there is one).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # bad input: missing or unparsable file, bad command line
EXIT_ISSUES = 3  # a file was read but has lint issues (errors; warnings alone do not fail)


class PipelinesError(Exception):
    """Base of every error pipelines raises on purpose."""

    exit_code = EXIT_BAD_INPUT


class PipelinesConfigError(PipelinesError):
    """Bad input: a pipeline file that is missing, unreadable or not YAML."""

    exit_code = EXIT_BAD_INPUT
