"""Validating several spec files together, as the portal would serve them: each on its own, then across them.

What ``auto-docs validate`` does with its files: each one is validated offline (:func:`docgen.validate.validate_file`,
the service being the file's stem); then, as the portal serves every service together, an operationId that two
services use is an issue of the service that repeats it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from docgen.errors import DocgenError
from docgen.validate import Result, duplicate_operation_ids, load_spec, validate_file

__all__ = ["Validation", "validate_files"]


@dataclass
class Validation:
    """The results of the files that could be read, and the error of each one that could not."""

    results: list[Result] = field(default_factory=list)
    unreadable: list[DocgenError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every file was read and has no issue."""
        return not self.unreadable and all(r.ok for r in self.results)


def validate_files(paths: Iterable[str | Path]) -> Validation:
    """Validate every file, then the operationIds across them (when more than one was read)."""
    validation = Validation()
    for path in paths:
        try:
            validation.results.append(validate_file(path))
        except DocgenError as exc:
            validation.unreadable.append(exc)
    results = validation.results
    if len(results) > 1:
        # The portal serves every service together: an operationId must be unique across them too.
        documents = {r.service: load_spec(r.source)[0] for r in results}
        by_service = {r.service: r for r in results}
        for issue in duplicate_operation_ids(documents, {r.service: r.source for r in results}):
            result = by_service[issue.service]
            if issue not in result.issues:
                result.issues.append(issue)
    return validation
