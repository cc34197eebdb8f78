"""GitLab's regexes on RE2 (google-re2), as GitLab's own ``UntrustedRegexp`` runs them.

Every regex that untrusted text meets in ``pipelines`` runs here: a component's ``spec: inputs`` regexes, the
``$[[ inputs.x ]]`` scanner and the patterns of GitLab's CI schema. RE2 never backtracks, so a match costs time
linear in the text; Python's ``re`` takes 59 s to try ``^(a+)+$`` on 30 characters, and minutes for the
schema's ``cache:key`` pattern on a long key. A pattern RE2 refuses (backreferences, lookarounds) is one GitLab
refuses too, and is reported as such.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

from pipelines.errors import PipelinesConfigError

# GitLab's whitespace (Ruby's \s), spelled out: RE2's \s lacks \v.
SPACE = r"[\t\n\v\f\r ]"


class GitLabRegexError(Exception):
    """A regex GitLab would refuse; ``reason`` says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@cache
def _re2_options() -> Any:
    try:
        import re2
    except ImportError:
        raise PipelinesConfigError(
            "google-re2 is not installed: it matches GitLab's regexes as GitLab does (RE2)"
        ) from None
    options = re2.Options()
    options.log_errors = False  # RE2 would log every refused pattern on stderr, past our one-line errors
    return options


@lru_cache(maxsize=256)  # bounded: a file may hold thousands of distinct regexes, each RE2 object up to 8 MiB
def re2_compile(pattern: str) -> Any:
    """``pattern`` compiled by RE2; raises ``GitLabRegexError`` with RE2's reason when RE2 refuses it."""
    options = _re2_options()  # first: it says so in one line when google-re2 is missing
    import re2

    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else b"refused"
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise GitLabRegexError(text) from None
    except UnicodeEncodeError:  # a lone surrogate, which YAML's \ud800 can make: not UTF-8, not a GitLab regex
        raise GitLabRegexError("not UTF-8 text") from None


def input_regex_pattern(regex: str) -> str:
    """The pattern of a ``spec: inputs`` regex, which may be written between slashes (``/^v[0-9]+$/``)."""
    return regex[1:-1] if len(regex) > 1 and regex.startswith("/") and regex.endswith("/") else regex


def gitlab_regex(regex: str) -> Any:
    """A ``spec: inputs`` regex as GitLab compiles it (RE2). Raises ``GitLabRegexError``, one line saying why
    GitLab would refuse it: Python's account of a syntax error (it gives the position), else RE2's reason."""
    pattern = input_regex_pattern(regex)
    try:
        return re2_compile(pattern)
    except GitLabRegexError as refused:
        try:
            re.compile(pattern)  # only for a clearer message; the pattern is never matched by Python
        except re.error as exc:
            raise GitLabRegexError(f"does not compile: {exc}") from None
        except (RecursionError, OverflowError, ValueError):
            pass  # Python gives up on it too, with nothing clearer to say than RE2
        raise GitLabRegexError(
            f"is refused by RE2, GitLab's regex engine ({refused.reason}): GitLab would refuse it"
        ) from None


def regex_search(compiled: Any, text: str) -> bool:
    """Whether RE2-``compiled`` matches somewhere in ``text`` (GitLab's ``match?``); time linear in ``text``."""
    try:
        return compiled.search(text) is not None
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 text GitLab could be given matches
        return False
