"""Durations as GitLab reads them: ``artifacts:expire_in``, ``timeout`` and ``start_in``, checked offline.

Why this exists: GitLab parses these three keywords with the Ruby gem ``gitlab_chronic_duration``
(``ChronicDuration.parse``), which reads far more than a schema pattern can say (``'2h20min'``,
``'47 yrs 6 mos and 4.5d'``, ``'1:30:00'``, ``'one hour'``) and refuses a single unknown word.
``auto-pipelines lint`` must accept exactly what GitLab accepts and refuse ``expire_in: banana`` or
``timeout: forever``, so this module is a faithful port of the gem's parser, not an approximation of it.

What was followed (read through the search index of public repositories; the gem's own home is on gitlab.com
and is not in the index):

- The gem, gitlab_chronic_duration 0.12.0 (the version GitLab has used since its MR 132554, Sep 2023, which
  dropped the ``use_complete_matcher`` flag): ``lib/chronic_duration.rb`` as copied verbatim into
  ``opf/openproject`` (commit 2e36de79a997c053fb5fb05a744dd0ce5e28038e, header "Copied from
  .../gitlab-chronic-duration version 0.12.0") and its spec ``spec/lib/chronic_duration_spec.rb``
  (commit df237446a1ef5dd6fc23a21bd6f30ecb7bcd5b25). That copy leaves out the ``Numerizer.numerize`` call
  (OpenProject has no numerizer); the gem itself still depends on ``numerizer ~> 0.2`` (rubygems.org,
  0.12.0), and its 0.10.6.2 release (Debian's ``ruby-chronic-duration 0.10.6.2-2``, file
  ``gitlab_chronic_duration.rb``) calls ``filter_by_type(Numerizer.numerize(res))``: this port keeps that call.
  For parsing, 0.12.0 differs from 0.10.6.2 only by the anchored ``time_matcher`` of ``filter_by_type`` (and
  a per-call ``raise_exceptions`` option GitLab does not pass).
- numerizer 0.2.0 (Debian's ``ruby-numerizer 0.2.0-2``, ``numerizer.rb``): ported whole, ordinals and
  fractions included (``'one hour'``, ``'twenty one days'``, ``'1 and a half hours'``, ``'one hundred and
  five seconds'``).
- GitLab, ``gitlabhq/gitlabhq``: ``config/initializers/chronic_duration.rb`` (commit 1c62d112:
  ``raise_exceptions = true``, so an unknown word is an error, not a word dropped);
  ``lib/gitlab/ci/build/duration_parser.rb`` (``never``, any ASCII case, means no expiry: expire_in only);
  ``lib/gitlab/config/entry/legacy_validation_helpers.rb`` (commit 27d47e40: a value that is not a String is
  refused, so ``timeout: 3600`` unquoted is refused; the limit test is ``parse(value).second.from_now <
  parse(limit).second.from_now``, whose two clock reads make a value equal to the limit pass);
  ``lib/gitlab/config/entry/validators.rb`` (DurationValidator); ``lib/gitlab/ci/config/entry/job.rb``
  (``start_in`` limit ``'1 week'``, 604800 s); ``lib/gitlab/ci/config/entry/timeout.rb`` (limit
  ``ChronicDuration.output(Project::MAX_BUILD_TIMEOUT)`` with ``MAX_BUILD_TIMEOUT = 1.month`` in
  ``app/models/project.rb``: Rails' month of 2629746 s, output as ``'1 mo 10 hrs 29 mins 6 secs'``, which
  parses back to 2629746 s); ``spec/lib/gitlab/ci/config/entry/job_spec.rb`` (``timeout: 100`` gives "should
  be a duration"); ``doc/ci/yaml`` for the documented examples.

The gem's arithmetic: a month is 30 days, a week 30 / 4 = 7 days (integer division), a year 31557600 s
(365.25 days); a number without a unit is seconds; ``and``, ``with``, ``plus`` and a comma at either end of a
word are dropped; a unit alone counts as one (``'day'``); ``h:mm:ss``-style times read right to left as
seconds, minutes, hours, days, months, years. The result is an Integer unless a fraction of a unit was
written; zero is nil.

Where Ruby's regexes are matched on text other than ASCII, the port follows Onigmo: ``\\d``, ``\\w``, ``\\s``
are ASCII-only, ``^``/``$`` match at every line, and case-insensitive literals also match ``ſ`` for ``s`` and
the ligatures ``ﬁ``, ``ﬅ``/``ﬆ`` for ``fi``, ``st`` (the only folds that reach ASCII in numerizer's words).
Any other character outside ASCII ends inside a word the gem does not know, so it is refused there as here.

Not confirmed: the 0.12.0 ``cleanup`` itself (its Numerizer call is inferred from the gemspec and 0.10.6.2,
and the behaviour was checked by running 0.10.6.2 with the 0.12.0 ``time_matcher`` patched in, under Ruby
3.1, against this port); a value more than the limit by less than the two clock reads' gap (microseconds)
can pass on GitLab and is refused here; inputs that crash the gem (a ``h:mm`` line with more than six
``:``-separated parts in the whole text) are refused here, while GitLab answers them with an internal error.

Hostile input: text longer than :data:`BUDGET` characters is refused before any parsing; everything after is
a fixed sequence of scans. The regexes left are linear (numerizer's words with one character of context, the
``h:mm`` test, the number pattern, andition's pattern); numerizer's two backtracking-prone regexes (fraction
evaluation, and ``hundred``/``thousand``/...) are hand-written scans; numerizer's "andition" merge loop restarts
after each merge, as the gem's does, which the budget bounds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from autocore.text import display

BUDGET = 1000
"""The longest duration text parsed, in characters: any real duration is a few dozen."""

SHOW = 60
"""At most this many characters of a refused value are shown in a message."""

TIMEOUT_LIMIT = 2629746
"""``timeout``: ``ChronicDuration.output(1.month)`` parsed back, in seconds (30 days 10:29:06)."""

START_IN_LIMIT = 604800
"""``start_in``: ``'1 week'``, in seconds."""

_HINTS = {
    "expire_in": "'1 week', '3 hours 30 min' or 'never'",
    "timeout": "'1h 30m' or '3 hours'",
    "start_in": "'30 minutes' or '1 day'",
}
_LIMITS = {"timeout": (TIMEOUT_LIMIT, "1 month"), "start_in": (START_IN_LIMIT, "1 week")}


class DurationError(ValueError):
    """A text GitLab's ChronicDuration refuses: a word it does not know, a form it cannot handle, or too long."""


# --- Ruby's regex classes, as Onigmo has them: ASCII-only, and ^/$ at every line (re.MULTILINE) ---------------

_WHITESPACE = " \t\n\x0b\x0c\r"  # Ruby's \s, and what String#split(' ') splits on
_STRIP = _WHITESPACE + "\x00"  # String#strip also removes NUL at either end
_DIGITS = frozenset("0123456789")
_NON_WORD = "[^A-Za-z0-9_]"  # Ruby's \W
_SPACE = "[ \t\n\x0b\x0c\r]"  # Ruby's \s
_BEFORE = f"(^|{_NON_WORD})"
_AFTER = f"(?=$|{_NON_WORD})"
_NUM = "<num>"  # numerizer's marker; a <num> typed in the input is one too, as in the gem


def _literal(word: str) -> str:
    """``word`` as Onigmo matches it under ``/i`` in a downcased text: ``ſ`` for ``s``; ``ﬁ``, ``ﬅ``, ``ﬆ``."""
    out = []
    i = 0
    while i < len(word):
        pair = word[i : i + 2]
        if pair == "fi":
            out.append("(?:fi|\ufb01)")
            i += 2
        elif pair == "st":
            out.append("(?:[s\u017f]t|[\ufb05\ufb06])")
            i += 2
        else:
            out.append("[s\u017f]" if word[i] == "s" else re.escape(word[i]))
            i += 1
    return "".join(out)


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.MULTILINE)


# --- numerizer 0.2.0 -----------------------------------------------------------------------------------------

_DIRECT_NUMS = [
    ("eleven", "11"),
    ("twelve", "12"),
    ("thirteen", "13"),
    ("fourteen", "14"),
    ("fifteen", "15"),
    ("sixteen", "16"),
    ("seventeen", "17"),
    ("eighteen", "18"),
    ("nineteen", "19"),
    ("ninteen", "19"),
    ("zero", "0"),
    ("ten", "10"),
]
_SINGLE_NUMS = [("one", 1), ("two", 2), ("three", 3), ("four", 4), ("five", 5), ("six", 6), ("seven", 7)]
_SINGLE_NUMS += [("eight", 8), ("nine", 9)]
_TEN_PREFIXES = [("twenty", 20), ("thirty", 30), ("forty", 40), ("fourty", 40), ("fifty", 50), ("sixty", 60)]
_TEN_PREFIXES += [("seventy", 70), ("eighty", 80), ("ninety", 90)]
_BIG_PREFIXES = [("hundred", 100), ("thousand", 1000), ("million", 10**6), ("billion", 10**9)]
_BIG_PREFIXES += [("trillion", 10**12)]
# (word, denominator, whether numerizer allows a plural 's')
_FRACTIONS = [("half", 2, False), ("third", 3, True), ("fourth", 4, True), ("quarter", 4, True)]
_FRACTIONS += [("fifth", 5, True), ("sixth", 6, True), ("seventh", 7, True), ("eighth", 8, True)]
_FRACTIONS += [("nineth", 9, True)]
_SINGLE_ORDINALS = [("first", 1), ("third", 3), ("fourth", 4), ("fifth", 5), ("sixth", 6), ("seventh", 7)]
_SINGLE_ORDINALS += [("eighth", 8), ("ninth", 9)]
_DIRECT_ORDINALS = [
    ("tenth", "10"),
    ("eleventh", "11"),
    ("twelfth", "12"),
    ("thirteenth", "13"),
    ("fourteenth", "14"),
    ("fifteenth", "15"),
    ("sixteenth", "16"),
    ("seventeenth", "17"),
    ("eighteenth", "18"),
    ("nineteenth", "19"),
    ("twentieth", "20"),
    ("thirtieth", "30"),
    ("fourtieth", "40"),
    ("fiftieth", "50"),
    ("sixtieth", "60"),
    ("seventieth", "70"),
    ("eightieth", "80"),
    ("ninetieth", "90"),
]

_Sub = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _keep_before(replacement: str) -> Callable[[re.Match[str]], str]:
    """numerizer's ``'\\1<num>N'``: the character before the word stays."""
    return lambda match: match.group(1) + replacement


def _constant(replacement: str) -> Callable[[re.Match[str]], str]:
    return lambda match: replacement


def _numerizer_subs() -> list[_Sub]:
    """numerizer's substitutions up to, not including, fraction evaluation, in its order."""
    subs: list[_Sub] = []
    for word, value in _DIRECT_NUMS:
        subs.append((_compile(_BEFORE + _literal(word) + _AFTER), _keep_before(f"{_NUM}{value}")))
    # The last of numerizer's direct numbers, ['\ba[\b^$]', '1']: in a Ruby character class \b is a backspace,
    # so this is an 'a' followed by a backspace, '^' or '$' (numerizer meant a lone 'a', and never matches one).
    subs.append((_compile(_BEFORE + r"\ba[\x08^$]" + _AFTER), _keep_before(_NUM + "1")))
    for word, value in _SINGLE_NUMS:
        subs.append((_compile(_BEFORE + _literal(word) + _AFTER), _keep_before(f"{_NUM}{value}")))
    for ten, ten_value in _TEN_PREFIXES:
        for single, single_value in _SINGLE_NUMS:
            pattern = _BEFORE + _literal(ten + single) + _AFTER
            subs.append((_compile(pattern), _keep_before(f"{_NUM}{ten_value + single_value}")))
        for ordinal, ordinal_value in _SINGLE_ORDINALS:
            pattern = _BEFORE + _literal(ten) + f"({_SPACE})?" + _literal(ordinal) + _AFTER
            subs.append((_compile(pattern), _keep_before(f"{_NUM}{ten_value + ordinal_value}{ordinal[-2:]}")))
        subs.append((_compile(_BEFORE + _literal(ten) + _AFTER), _keep_before(f"{_NUM}{ten_value}")))
    for word, denominator, plural in _FRACTIONS:
        fraction = _literal(word) + (f"({_literal('s')})?" if plural else "")
        subs.append((_compile("a " + fraction + _AFTER), _constant(f"{_NUM}1/{denominator}")))
        subs.append((_compile(_SPACE + fraction + _AFTER), _constant(f"/{denominator}")))
    for word, value in [*_DIRECT_ORDINALS, *_SINGLE_ORDINALS]:
        subs.append((_compile(_BEFORE + _literal(word) + _AFTER), _keep_before(f"{_NUM}{value}{word[-2:]}")))
    return subs


_PREPROCESS = _compile(r" +|([^0-9])-([^0-9])")  # runs of spaces to one; a hyphen between non-digits to a space
_NUMERIZER_SUBS = _numerizer_subs()
_BIG_WORDS = [(_compile(_literal(word)), value) for word, value in _BIG_PREFIXES]
_ANDITION = _compile(r"<num>([0-9]+)( | and )<num>([0-9]+)(?=[^A-Za-z0-9_]|$)")


def _ruby_float_to_s(value: float) -> str:
    """Ruby's ``Float#to_s``: Python's shortest repr, but ``1.0e+16`` where Python writes ``1e+16``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        text = f"{mantissa}e{exponent}"
    return text


def _ruby_divide(numerator: float, denominator: float) -> float:
    """Ruby's Float division: ``1.0 / 0.0`` is Infinity and ``0.0 / 0.0`` NaN, where Python raises."""
    if denominator:
        return numerator / denominator
    return math.inf if numerator else math.nan


def _digit_run_end(text: str, start: int) -> int:
    end = start
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    return end


def _fraction_separator(region: str) -> bool:
    """Whether ``region`` is ``(?: | and |-)+(<num>|\\s)*``, decided in one pass each way (no backtracking)."""
    size = len(region)
    starts = [False] * (size + 1)  # region[:k] is ( | and |-)*
    starts[0] = True
    for k in range(1, size + 1):
        starts[k] = (starts[k - 1] and region[k - 1] in " -") or (
            k >= 5 and starts[k - 5] and region[k - 5 : k] == " and "
        )
    ends = [False] * (size + 1)  # region[k:] is (<num>|\s)*
    ends[size] = True
    for k in range(size - 1, -1, -1):
        ends[k] = (region[k] in _WHITESPACE and ends[k + 1]) or (
            region.startswith(_NUM, k) and k + 5 <= size and ends[k + 5]
        )
    return any(starts[k] and ends[k] for k in range(1, size + 1))


def _fraction_at(text: str, start: int, first_end: int) -> tuple[int, str] | None:
    """numerizer's ``/(\\d+)(?: | and |-)+(<num>|\\s)*(\\d+)\\s*\\/\\s*(\\d+)/i`` matched at ``start``."""
    size = len(text)
    second = first_end
    while second < size and text[second] not in _DIGITS:
        second += 1
    if second == size or not _fraction_separator(text[first_end:second]):
        return None
    second_end = _digit_run_end(text, second)
    slash = second_end
    while slash < size and text[slash] in _WHITESPACE:
        slash += 1
    if slash == size or text[slash] != "/":
        return None
    third = slash + 1
    while third < size and text[third] in _WHITESPACE:
        third += 1
    third_end = _digit_run_end(text, third)
    if third_end == third:
        return None
    whole = float(text[start:first_end])
    numerator, denominator = float(text[second:second_end]), float(text[third:third_end])
    return third_end, _ruby_float_to_s(whole + _ruby_divide(numerator, denominator))


def _evaluate_fractions(text: str) -> str:
    """numerizer's ``gsub`` that turns ``'1 <num>1/2'`` into ``'1.5'``."""
    out = []
    copied = scan = 0
    while True:
        start = scan
        while start < len(text) and text[start] not in _DIGITS:
            start += 1
        if start == len(text):
            break
        first_end = _digit_run_end(text, start)
        found = _fraction_at(text, start, first_end)
        if found is None:
            scan = first_end
            continue
        end, value = found
        out.append(text[copied:start])
        out.append(value)
        copied = scan = end
    out.append(text[copied:])
    return "".join(out)


def _big_prefix(text: str, word: re.Pattern[str], value: int) -> str:
    """numerizer's ``gsub(/(?:<num>)?(\\d*) *hundred/i)``: the leftmost match ends at each ``hundred`` found."""
    out = []
    copied = 0
    for match in word.finditer(text):
        start = match.start()
        while start > copied and text[start - 1] == " ":
            start -= 1
        digits_end = start
        while start > copied and text[start - 1] in _DIGITS:
            start -= 1
        digits = text[start:digits_end]
        if start - 5 >= copied and text[start - 5 : start] == _NUM:
            start -= 5
        out.append(text[copied:start])
        out.append(f"{_NUM}{value * int(digits)}" if digits else str(value))
        copied = match.end()
    out.append(text[copied:])
    return "".join(out)


def _andition(text: str) -> str:
    """numerizer's ``andition``: ``<num>20 <num>1`` to ``<num>21``, ``<num>100 and <num>5`` to ``<num>105``."""
    position = 0
    while True:
        match = _ANDITION.search(text, position)
        if match is None:
            return text
        if "and" in match.group(2) or len(match.group(1)) > len(match.group(3)):
            merged = f"{_NUM}{int(match.group(1)) + int(match.group(3))}"
            text = text[: match.start()] + merged + text[match.end() :]
            position = 0
        else:
            position = match.end()


def _numerize(text: str) -> str:
    """``Numerizer.numerize`` (numerizer 0.2.0): number words to digits."""
    text = _PREPROCESS.sub(lambda match: f"{match.group(1) or ''} {match.group(2) or ''}", text)
    for pattern, replacement in _NUMERIZER_SUBS:
        text = pattern.sub(replacement, text)
    text = _evaluate_fractions(text)
    for word, value in _BIG_WORDS:
        text = _andition(_big_prefix(text, word, value))
    return _andition(text).replace(_NUM, "")


# --- gitlab_chronic_duration 0.12.0 ----------------------------------------------------------------------------

_TIME = _compile(r"^[0-9]+:[0-9]+(?::[0-9]+){0,4}(?:\.[0-9]*)?$")
_FLOAT = re.compile(r"[0-9]*\.?[0-9]+")
_CHRONO_UNITS = ["seconds", "minutes", "hours", "days", "months", "years"]
_UNIT_SECONDS = {
    "years": 31557600,
    "months": 3600 * 24 * 30,
    "weeks": 3600 * 24 * (30 // 4),
    "days": 3600 * 24,
    "hours": 3600,
    "minutes": 60,
    "seconds": 1,
}
_MAPPINGS = {
    **dict.fromkeys(["seconds", "second", "secs", "sec", "s"], "seconds"),
    **dict.fromkeys(["minutes", "minute", "mins", "min", "m"], "minutes"),
    **dict.fromkeys(["hours", "hour", "hrs", "hr", "h"], "hours"),
    **dict.fromkeys(["days", "day", "dy", "d"], "days"),
    **dict.fromkeys(["weeks", "week", "wks", "wk", "w"], "weeks"),
    **dict.fromkeys(["months", "mo", "mos", "month"], "months"),
    **dict.fromkeys(["years", "year", "yrs", "yr", "y"], "years"),
}
_JOIN_WORDS = frozenset(["and", "with", "plus"])


def _split(text: str) -> list[str]:
    """Ruby's ``String#split`` without a pattern: on runs of ASCII whitespace, none at either end."""
    words = []
    start = None
    for index, char in enumerate(text):
        if char in _WHITESPACE:
            if start is not None:
                words.append(text[start:index])
                start = None
        elif start is None:
            start = index
    if start is not None:
        words.append(text[start:])
    return words


def _has_digit(word: str) -> bool:
    return any(char in _DIGITS for char in word)


def _filter_by_type(text: str) -> str:
    """``3:41:59`` to ``3 hours 41 minutes 59 seconds``; other text unchanged."""
    compact = text.replace(" ", "")
    if not _TIME.search(compact):
        return text
    parts = compact.split(":")
    while parts and not parts[-1]:  # Ruby's split drops trailing empty fields
        parts.pop()
    if len(parts) > len(_CHRONO_UNITS):
        # The gem returns nil here and then fails on it (NoMethodError): GitLab answers with an error.
        raise DurationError(f"{len(parts)} ':'-separated parts, more than the {len(_CHRONO_UNITS)} the gem reads")
    named = [f"{part} {unit}" for part, unit in zip(reversed(parts), _CHRONO_UNITS, strict=False)]
    return " ".join(reversed(named))


def _filter_through_white_list(text: str) -> list[str]:
    """Known words mapped to their unit, ``and``/``with``/``plus`` dropped, any other word an error."""
    kept: list[str] = []
    for word in _split(text):
        if _has_digit(word):
            kept.append(word.strip(_STRIP))
            continue
        stripped = word.strip(_STRIP)
        if stripped.startswith(","):
            stripped = stripped[1:]
        if stripped.endswith(","):
            stripped = stripped[:-1]
        if stripped in _MAPPINGS:
            kept.append(_MAPPINGS[stripped])
        elif stripped not in _JOIN_WORDS:
            raise DurationError(f"the word '{display(word, SHOW)}' is not a duration word")
    if kept and kept[0] in _MAPPINGS:
        kept.insert(0, "1")  # 'day' and 'minute 30s' start with an implied 1
    return kept


def _cleanup(text: str) -> list[str]:
    text = _filter_by_type(_numerize(text.lower()))
    text = _FLOAT.sub(lambda match: f" {match.group()} ", text)
    text = re.sub(" +", " ", text).strip(_STRIP)
    return _filter_through_white_list(text)


def _to_float(number: int | float) -> float:
    try:
        return float(number)
    except OverflowError:  # Ruby turns an Integer too big for a Float into Infinity
        return math.inf


def _convert_to_number(word: str) -> int | float:
    """Ruby's ``string.to_f % 1 > 0 ? string.to_f : string.to_i`` on a number word such as ``'4.5'``."""
    as_float = float(word)  # 'inf' for digits beyond a double's range, as Ruby's to_f
    if as_float % 1 > 0:  # inf % 1 is nan, and nan > 0 is false, in both languages
        return as_float
    whole = word.split(".")[0]
    return int(whole) if whole else 0


def _calculate_from_words(words: list[str]) -> int | float:
    total: int | float = 0
    for index, word in enumerate(words):
        if not _has_digit(word):
            continue
        unit = words[index + 1] if index + 1 < len(words) else "seconds"
        term = _convert_to_number(word) * _UNIT_SECONDS.get(unit, 0)
        if isinstance(total, int) and isinstance(term, int):
            total += term
        else:
            total = _to_float(total) + _to_float(term)
    return total


def parse_duration(text: str) -> float | None:
    """Seconds in ``text`` as ``ChronicDuration.parse`` computes them under GitLab's settings, or None for nil.

    The result is an ``int`` where the gem answers an Integer and a ``float`` where it answers a Float.
    ``None`` is the gem's nil: the text comes to zero seconds (``'0'``, ``''``, ``'and'``). An unknown word
    raises :class:`DurationError`, as GitLab's ``raise_exceptions = true`` makes the gem raise; so do text
    longer than :data:`BUDGET` and the forms the gem crashes on.
    """
    if len(text) > BUDGET:
        raise DurationError(f"longer than {BUDGET} characters, over the duration length budget")
    seconds = _calculate_from_words(_cleanup(text))
    return None if seconds == 0 else seconds


def _is_never(text: str) -> bool:
    """``value.to_s.casecmp('never') == 0``: ``never`` in any ASCII case, nothing around it."""
    return text.isascii() and text.lower() == "never"


def _shown(value: str | int | float) -> str:
    """``value`` as a message shows it: through :func:`display`, at most :data:`SHOW` characters."""
    try:
        text = str(value)
    except ValueError:  # an int past Python's digit limit for str()
        return "(a number too long to show)"
    if len(text) <= BUDGET:
        return display(text, SHOW)
    shown = display(text[:BUDGET], SHOW)  # no need to escape a megabyte to show sixty characters of it
    return shown if shown.endswith("...") else display(text[:BUDGET], SHOW - 3) + "..."


def check_duration(keyword: str, value: object) -> str | None:
    """None when GitLab accepts ``value`` for ``keyword`` (expire_in, timeout, start_in); else why not, in one line.

    Not judged here (None): text with a ``$`` (a CI variable or a ``$[[ inputs ]]`` interpolation, which only
    GitLab can expand; note that GitLab's validators for these three keywords have no ``variable: true``, so
    GitLab itself reads ``$X`` as an unknown word), and values that are not numbers or text (booleans, lists,
    mappings, null: the schema reports those). A number written without quotes is refused: GitLab wants a
    String, and answers ``timeout: 3600`` with "should be a duration".
    """
    if keyword not in _HINTS:
        raise ValueError(f"check_duration: unknown keyword {keyword!r} (expire_in, timeout or start_in)")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    shown = _shown(value)
    if not isinstance(value, str):
        quoted = value > 0 and not shown.endswith("...") and check_duration(keyword, shown) is None
        advice = f"quote it: '{shown}' is {shown} seconds" if quoted else f"write e.g. {_HINTS[keyword]}"
        return f"{keyword} {shown} is a number, and GitLab takes only a string here ({advice})"
    if len(value) > BUDGET:
        return f"{keyword} '{shown}' is longer than {BUDGET} characters, over the duration length budget"
    if "$" in value:
        return None
    if keyword == "expire_in" and _is_never(value):
        return None
    try:
        seconds = parse_duration(value)
    except DurationError:
        seconds = None
    if seconds is None:
        return f"{keyword} '{shown}' is not a duration GitLab understands (write e.g. {_HINTS[keyword]})"
    if keyword in _LIMITS:
        limit, limit_text = _LIMITS[keyword]
        if seconds > limit:
            return f"{keyword} '{shown}' is longer than GitLab's limit of {limit_text}"
    return None
