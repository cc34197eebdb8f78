"""Hypothesis strategies for hostile documents: random YAML/JSON-shaped data, random text near the formats'
syntax, and the classic attacks (deep nesting, aliases, huge numbers, control characters)."""

from __future__ import annotations

import json

import yaml
from hypothesis import strategies as st

# Scalars with the characters that break naive code: control characters, bidi overrides, quotes, YAML syntax.
nasty_text = st.text(
    alphabet=st.sampled_from(
        list("abcXYZ019 _-./:{}[]&*!|>'\"%@`#,?=$\\~") + ["\n", "\r", "\t", "\x00", "\x1b", "\u202e", "\u2028", "é"]
    ),
    max_size=24,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    nasty_text,
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(nasty_text, children, max_size=5),
    ),
    max_leaves=30,
)


def as_yaml(value: object) -> str:
    return yaml.safe_dump(value, allow_unicode=True, default_flow_style=None)


def as_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


syntax_soup = st.text(
    alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#,? \n\t0123456789.eE+") + ["\x00", "\ufeff", "<"]), max_size=200
)
attacks = st.one_of(
    st.integers(min_value=100, max_value=3000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=100, max_value=600).map(
        lambda n: "".join("  " * i + "k:\n" for i in range(n)) + "  " * n + "x"
    ),
    st.integers(min_value=101, max_value=6000).map(lambda n: "x: " + "9" * n),
    st.sampled_from(
        ["x: 1e999", "x: .nan", "x: -.inf", '{"x": NaN}', '{"x": 1e400}', "x: !!python/object:os.system {}"]
    ),
    st.integers(min_value=5, max_value=9).map(
        lambda n: (
            "a: &a ["
            + ",".join(["x"] * n)
            + "]\n"
            + "".join(f"{b}: &{b} [{','.join([f'*{a}'] * n)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))
        )
    ),
)
hostile_text = st.one_of(documents.map(as_yaml), documents.map(as_json), syntax_soup, attacks)
