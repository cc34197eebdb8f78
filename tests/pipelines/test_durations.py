"""pipelines.durations: GitLab's ChronicDuration, ported; what GitLab accepts for expire_in, timeout, start_in.

The expected values come from the gem's own specs, GitLab's specs and docs (each group names its source), and,
where marked "checked against the gem", from running gitlab_chronic_duration 0.10.6.2 with the 0.12.0
``time_matcher`` and numerizer 0.2.0 under Ruby 3.1 with ``raise_exceptions = true``, as GitLab sets it.
"""

from __future__ import annotations

import pytest

from pipelines.durations import (
    BUDGET,
    START_IN_LIMIT,
    TIMEOUT_LIMIT,
    DurationError,
    check_duration,
    parse_duration,
)

MONTH = 30 * 24 * 3600
YEAR = 31557600
WEEK = 7 * 24 * 3600
DAY = 24 * 3600

# The gem's spec: gitlab_chronic_duration 0.12.0 spec/lib/chronic_duration_spec.rb, as copied into
# opf/openproject at commit df237446a1ef5dd6fc23a21bd6f30ecb7bcd5b25 ("exemplars" of ".parse").
GEM_SPEC_EXEMPLARS = [
    ("1:20", 60 + 20),
    ("1:20.51", 60 + 20.51),
    ("4:01:01", (4 * 3600) + 60 + 1),
    ("3 mins 4 sec", (3 * 60) + 4),
    ("3 Mins 4 Sec", (3 * 60) + 4),
    ("2 hrs 20 min", (2 * 3600) + (20 * 60)),
    ("2h20min", (2 * 3600) + (20 * 60)),
    ("6 mos 1 day", (6 * 30 * 24 * 3600) + (24 * 3600)),
    ("1 year 6 mos 1 day", (1 * 31557600) + (6 * 30 * 24 * 3600) + (24 * 3600)),
    ("2.5 hrs", 2.5 * 3600),
    ("47 yrs 6 mos and 4.5d", (47 * 31557600) + (6 * 30 * 24 * 3600) + (4.5 * 24 * 3600)),
    ("3 weeks and, 2 days", (3600 * 24 * 7 * 3) + (3600 * 24 * 2)),
    ("3 weeks, plus 2 days", (3600 * 24 * 7 * 3) + (3600 * 24 * 2)),
    ("3 weeks with 2 days", (3600 * 24 * 7 * 3) + (3600 * 24 * 2)),
    ("1 month", 3600 * 24 * 30),
    ("2 months", 3600 * 24 * 30 * 2),
    ("18 months", 3600 * 24 * 30 * 18),
    ("1 year 6 months", int(3600 * 24 * (365.25 + (6 * 30)))),
    ("day", 3600 * 24),
    ("minute 30s", 90),
    # The same spec's ".cleanup" and ".filter_by_type" examples, through parse.
    ("4 days and 11 hours", 4 * DAY + 11 * 3600),
    ("  4 days and 11     hours", 4 * DAY + 11 * 3600),
    ("4m11.5s", 4 * 60 + 11.5),
    ("3:14", 3 * 60 + 14),
    ("12:10:14", 12 * 3600 + 10 * 60 + 14),
    ("4 hours", 4 * 3600),
    # And its type tests: a float if seconds are in decimals, an integer otherwise.
    ("12 mins 3.141 seconds", 12 * 60 + 3.141),
    ("12 mins 3 seconds", 12 * 60 + 3),
]

# Number words: the upstream spec, henrypoydar/chronic_duration spec/lib/chronic_duration_spec.rb at commit
# 32f18df73fee9dc9e1219f8c09c3456227378b93 (its examples without months or years, which it counts in work
# days), and GitLab's docs for timeout ('one hour') and auto_stop_in ('one week').
NUMBER_WORD_EXEMPLARS = [
    ("three mins four sec", 3 * 60 + 4),
    ("two hours and twenty minutes", 2 * 3600 + 20 * 60),
    ("four hours and forty minutes", 4 * 3600 + 40 * 60),
    ("four hours, and fourty minutes", 4 * 3600 + 40 * 60),
    ("one hour", 3600),
    ("one week", WEEK),
    # Checked against the gem.
    ("twenty one days", 21 * DAY),
    ("twenty-one days", 21 * DAY),
    ("one hundred and five seconds", 105),
    ("ten thousand seconds", 10000),
    ("1 and a half hours", 1.5 * 3600),
    ("eleven minutes", 11 * 60),
    ("hundred hundred", 100100),  # each 'hundred' alone is 100, the two run together
    ("\u017feven minutes", 7 * 60),  # Onigmo's /i matches 'ſ' (long s) for 's'
    ("\ufb01ve minutes", 5 * 60),  # ... and the ligature 'ﬁ' for 'fi'
]

# What the gem makes of other forms: checked against the gem.
OTHER_EXEMPLARS = [
    ("3600", 3600),
    ("1h30m", 5400),
    ("1.5h", 5400.0),
    ("1 day 2 hours", DAY + 2 * 3600),
    ("1 week", WEEK),
    ("1:30:00", 5400),
    ("12:30", 750),
    ("1 : 30", 90),  # spaces are removed before the h:mm test
    ("1 year", YEAR),
    ("1 month", MONTH),
    (".5", 0.5),
    ("1 2", 2),  # a number followed by a number counts for nothing
    ("1 2 hours", 7200),
    ("DAY", DAY),
    ("day, 2 hours", DAY + 7200),
    (",day", DAY),  # a comma at either end of a word is dropped
    ("1 day \x00", DAY),  # String#strip removes NUL at the ends
    ("1\x0bminute", 60),  # vertical tab is whitespace to Ruby's split
    ("1:30\n2:00", 3720),  # the h:mm test is per line, the split on ':' is not
    ("<num>5 days", 5 * DAY),  # numerizer's marker, typed in, is removed as numerizer's own
    ("a^ day", DAY),  # numerizer's ['\ba[\b^$]', '1']
]

# Texts the gem refuses: with GitLab's raise_exceptions = true, an unknown word raises.
REFUSED = [
    "banana",
    "forever",
    "never",  # only DurationParser (expire_in) knows 'never'
    "gobblygoo",  # the gem spec's "when string can't be parsed"
    "23 gobblygoos",  # the gem spec's raise_exceptions example
    "1,000 mins",  # the upstream spec reads 60000; numerizer 0.2 leaves a ',' word, which GitLab refuses
    "a day",  # numerizer's lone 'a' never matches
    "half an hour",
    "1 day banana",
    "1:20.",
    "1:2:3:4:5:6:7",  # seven parts are not an h:mm time, so the ':' are words
    "1:2\n3:4:5:6:7:8",  # the gem crashes here (nil.gsub): GitLab answers with an error
    "1 - 2 days",
    "1 \u00a0minute",  # no-break space is not whitespace to Ruby
    "s\u0131x s",  # dotless i is no 'i' to Onigmo, though it is to Python's re.IGNORECASE
    "first",  # '1st'
    "1 1/0 hours",  # 'Infinity'
    "-5 minutes",
    " ,",
]

# Texts that come to zero: the gem's nil ("cannot parse zero").
ZERO = ["0", "", "   ", "0 seconds", "0:00", "and", "0.0"]


@pytest.mark.parametrize(("text", "seconds"), GEM_SPEC_EXEMPLARS + NUMBER_WORD_EXEMPLARS + OTHER_EXEMPLARS)
def test_parses_as_the_gem_does(text: str, seconds: float) -> None:
    result = parse_duration(text)
    assert result == seconds
    assert type(result) is type(seconds)


@pytest.mark.parametrize("text", REFUSED)
def test_unknown_words_and_broken_forms_raise(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize("text", ZERO)
def test_zero_is_nil(text: str) -> None:
    assert parse_duration(text) is None


def test_units_are_the_gems() -> None:
    """A month is 30 days, a week 30 / 4 = 7 days, a year 365.25 days; a bare number is seconds."""
    assert parse_duration("1 mo") == 30 * DAY
    assert parse_duration("1 w") == 7 * DAY
    assert parse_duration("1 y") == 365.25 * DAY
    assert parse_duration("42") == 42
    for unit, seconds in [("s", 1), ("m", 60), ("h", 3600), ("d", DAY), ("w", WEEK), ("mo", MONTH), ("y", YEAR)]:
        assert parse_duration(f"2{unit}") == 2 * seconds
    for words, seconds in [
        ("s sec secs second seconds", 1),
        ("m min mins minute minutes", 60),
        ("h hr hrs hour hours", 3600),
        ("d dy day days", DAY),
        ("w wk wks week weeks", WEEK),
        ("mo mos month months", MONTH),
        ("y yr yrs year years", YEAR),
    ]:
        for word in words.split():
            assert parse_duration(f"3 {word}") == 3 * seconds, word


# GitLab's docs (doc/ci/yaml): the examples of valid values for each keyword.
DOC_ACCEPTED = [
    ("expire_in", "42"),
    ("expire_in", "42 seconds"),
    ("expire_in", "3 mins 4 sec"),
    ("expire_in", "2 hrs 20 min"),
    ("expire_in", "2h20min"),
    ("expire_in", "6 mos 1 day"),
    ("expire_in", "47 yrs 6 mos and 4d"),
    ("expire_in", "3 weeks and 2 days"),
    ("expire_in", "never"),
    ("expire_in", "1 week"),
    ("timeout", "3600 seconds"),
    ("timeout", "60 minutes"),
    ("timeout", "one hour"),
    ("timeout", "3 hours 30 minutes"),
    ("timeout", "3h 30m"),
    ("start_in", "5"),
    ("start_in", "5 seconds"),
    ("start_in", "10 seconds"),
    ("start_in", "30 minutes"),
    ("start_in", "1 day"),
    ("start_in", "1 week"),
    # GitLab's spec/lib/gitlab/ci/config/entry/job_spec.rb and duration_parser_spec.rb.
    ("timeout", "1m 1s"),
    ("expire_in", "Never"),
    ("expire_in", "1 Day"),
    ("expire_in", "30 seconds"),
    # The brief's list.
    ("expire_in", "3600"),
    ("timeout", "1h30m"),
    ("timeout", "1.5h"),
    ("start_in", "1 day 2 hours"),
]


@pytest.mark.parametrize(("keyword", "value"), DOC_ACCEPTED)
def test_gitlab_examples_are_accepted(keyword: str, value: str) -> None:
    assert check_duration(keyword, value) is None


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        (
            "expire_in",
            "banana",
            "expire_in 'banana' is not a duration GitLab understands "
            "(write e.g. '1 week', '3 hours 30 min' or 'never')",
        ),
        (
            "timeout",
            "forever",
            "timeout 'forever' is not a duration GitLab understands (write e.g. '1h 30m' or '3 hours')",
        ),
        ("timeout", "2 months", "timeout '2 months' is longer than GitLab's limit of 1 month"),
        ("start_in", "8 days", "start_in '8 days' is longer than GitLab's limit of 1 week"),
    ],
)
def test_refusal_messages(keyword: str, value: str, message: str) -> None:
    assert check_duration(keyword, value) == message


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("timeout", "never"),
        ("start_in", "never"),
        ("expire_in", " never"),  # quoted with a space: casecmp fails, then 'never' is an unknown word
        ("expire_in", "never ever"),
        ("expire_in", "0"),
        ("expire_in", ""),
        ("timeout", "0 seconds"),
        ("start_in", "test"),  # GitLab's job_spec: "start in should be a duration"
        ("expire_in", "something"),  # GitLab's duration_parser_spec: falsy
        ("expire_in", "1 day banana"),
        ("timeout", "half an hour"),
    ],
)
def test_not_durations(keyword: str, value: str) -> None:
    message = check_duration(keyword, value)
    assert message is not None
    assert message.startswith(f"{keyword} '")
    assert " is not a duration GitLab understands (write e.g. " in message


@pytest.mark.parametrize(
    ("keyword", "value", "accepted"),
    [
        ("start_in", "1 week", True),  # equal to the limit passes: GitLab compares two clock reads
        ("start_in", "7 days", True),
        ("start_in", "604800", True),
        ("start_in", "604801", False),
        ("start_in", "7 days 1 second", False),
        ("start_in", "604800.5", False),
        ("start_in", "8 days", False),  # GitLab's job_spec
        ("start_in", "2 weeks", False),  # GitLab's rule_spec
        ("timeout", "1 month", True),
        ("timeout", "4 weeks", True),
        ("timeout", "30 days 10 hours 29 minutes 6 seconds", True),  # ChronicDuration.output(1.month)
        ("timeout", "1 mo 10 hrs 29 mins 6 secs", True),
        ("timeout", "2629746", True),
        ("timeout", "2629747", False),
        ("timeout", "30 days 10 hours 29 minutes 7 seconds", False),
        ("timeout", "31 days", False),
        ("timeout", "3 months", False),  # GitLab's job_spec
        ("timeout", "1 year", False),
        ("expire_in", "1 year", True),  # no limit on expiry
        ("expire_in", "9999 years", True),
    ],
)
def test_limits_at_their_edges(keyword: str, value: str, accepted: bool) -> None:
    message = check_duration(keyword, value)
    if accepted:
        assert message is None
    else:
        limit = "1 week" if keyword == "start_in" else "1 month"
        assert message == f"{keyword} '{value}' is longer than GitLab's limit of {limit}"


def test_limit_values() -> None:
    assert START_IN_LIMIT == parse_duration("1 week") == 604800
    assert TIMEOUT_LIMIT == parse_duration("1 mo 10 hrs 29 mins 6 secs") == 2629746


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("expire_in", "$ARTIFACT_EXPIRY"),
        ("timeout", "${JOB_TIMEOUT}"),
        ("start_in", "$[[ inputs.delay ]]"),
        ("timeout", "$[[ inputs.hours ]] hours"),
        ("expire_in", True),
        ("timeout", False),
        ("expire_in", ["1 day"]),
        ("timeout", {"hours": 1}),
        ("start_in", None),
    ],
)
def test_not_judged_here(keyword: str, value: object) -> None:
    assert check_duration(keyword, value) is None


@pytest.mark.parametrize(
    ("keyword", "value", "advice"),
    [
        ("timeout", 3600, "(quote it: '3600' is 3600 seconds)"),  # GitLab's job_spec: timeout: 100 is refused
        ("expire_in", 3600, "(quote it: '3600' is 3600 seconds)"),
        ("start_in", 5, "(quote it: '5' is 5 seconds)"),
        ("expire_in", 1.5, "(quote it: '1.5' is 1.5 seconds)"),
        ("timeout", 99999999, "(write e.g. '1h 30m' or '3 hours')"),  # quoted, it would pass the limit
        ("expire_in", 0, "(write e.g. '1 week', '3 hours 30 min' or 'never')"),
    ],
)
def test_unquoted_numbers_are_refused(keyword: str, value: float, advice: str) -> None:
    assert check_duration(keyword, value) == (
        f"{keyword} {value} is a number, and GitLab takes only a string here {advice}"
    )


def test_unknown_keyword_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown keyword"):
        check_duration("auto_stop_in", "1 day")


# Hostile input.


def test_megabyte_is_refused_by_the_budget() -> None:
    value = "1 day " * 200_000
    message = check_duration("expire_in", value)
    assert message is not None
    assert message.startswith("expire_in '1 day 1 day")
    assert message.endswith(f"longer than {BUDGET} characters, over the duration length budget")
    shown = message[len("expire_in '") : message.index("' is longer")]
    assert len(shown) <= 60
    with pytest.raises(DurationError, match="duration length budget"):
        parse_duration(value)


def test_megabyte_of_control_characters_is_escaped() -> None:
    message = check_duration("timeout", "\x1b[2J" * 250_000)
    assert message is not None
    assert "\x1b" not in message
    assert message.startswith("timeout '\\x1b[2J\\x1b[2J")
    assert message.endswith("over the duration length budget")


def test_budget_edge() -> None:
    at_budget = "1" + " " * (BUDGET - 2) + "s"
    assert len(at_budget) == BUDGET
    assert parse_duration(at_budget) == 1
    assert check_duration("timeout", at_budget) is None
    assert "duration length budget" in (check_duration("timeout", at_budget + " ") or "")


@pytest.mark.parametrize(
    "value",
    [
        "\x1b[31mbanana\x1b[0m",
        "1 day\nbanana",
        "1 day\r\x1b[2Kfake",
        "\u202ebanana",
        "banana\x00",
    ],
)
def test_messages_escape_control_characters(value: str) -> None:
    message = check_duration("expire_in", value)
    assert message is not None
    assert "\n" not in message
    assert "\r" not in message
    assert "\x1b" not in message
    assert "\u202e" not in message
    assert "\x00" not in message
    assert "is not a duration GitLab understands" in message


def test_long_values_are_shown_cut() -> None:
    value = "banana " * 20
    message = check_duration("expire_in", value)
    assert message is not None
    shown = message[len("expire_in '") : message.index("' is not")]
    assert len(shown) <= 60
    assert shown.endswith("...")


@pytest.mark.parametrize(
    "value",
    [
        "1" * BUDGET,
        "1" * (BUDGET - 1) + ".",
        "1" + " " * (BUDGET - 3) + "x/",
        "1 " * (BUDGET // 2),
        "<num>1 " * (BUDGET // 7),
        "hundred" * (BUDGET // 7),
        ("1" * 50 + "x hundred ") * (BUDGET // 60),
        "1." * (BUDGET // 2),
        "one " * (BUDGET // 4),
        "1:" * (BUDGET // 2 - 1) + "1",
        "1:1\n" * (BUDGET // 4),
        "a half " * (BUDGET // 7),
        "1" + " and" * (BUDGET // 4 - 2) + " 1/2",
        "1 " + "<num>" * (BUDGET // 5 - 2) + " 1/2",
        "<num>1000 " + "and <num>1 " * (BUDGET // 11 - 1),
        "a-" * (BUDGET // 2),
        "\x00" * BUDGET,
        "\u017f" * BUDGET,
    ],
)
def test_adversarial_texts_at_the_budget_return(value: str) -> None:
    """Each returns (no timing assertion: a hang would be the failure), with a number, nil or a refusal."""
    assert len(value) <= BUDGET
    try:
        result = parse_duration(value)
    except DurationError:
        result = None
    assert result is None or result > 0
    check_duration("timeout", value)
