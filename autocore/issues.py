"""One problem found in one input, as the toolkit's validators and linters report it."""

from __future__ import annotations

from dataclasses import dataclass

from autocore.text import display, one_line

SEVERITY_ERROR = "error"
SEVERITY_WARNING = "warning"
MAX_MESSAGE = 300  # characters of one issue's message; longer ones are cut with "..."


def issue_message(text: str) -> str:
    """Another tool's message (a schema validator's, GitLab's) as one issue line of at most MAX_MESSAGE."""
    return one_line(text, MAX_MESSAGE)


@dataclass(frozen=True)
class Issue:
    """A problem at ``path`` (a JSON path such as ``$.paths['/items'].post``) in the file ``source``.

    ``service`` names the service the file belongs to, where there is one (docgen's specs).
    """

    source: str
    path: str
    message: str
    rule: str
    severity: str = SEVERITY_ERROR
    service: str | None = None

    @property
    def is_warning(self) -> bool:
        return self.severity == SEVERITY_WARNING

    def as_dict(self, source_key: str = "source") -> dict[str, str]:
        """The issue as a JSON-ready dict; ``source_key`` is what the report calls the file."""
        head = {} if self.service is None else {"service": self.service}
        return {
            **head,
            source_key: self.source,
            "path": self.path,
            "message": self.message,
            "rule": self.rule,
            "severity": self.severity,
        }

    def __str__(self) -> str:
        level = "warning: " if self.is_warning else ""
        return display(f"{self.service or self.source}: {self.path}: {level}{self.message} [{self.rule}]")
