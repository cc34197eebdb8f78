"""``auto-pipelines render``: a service's ``.gitlab-ci.yml`` from its descriptor and the chosen components.

Staged like a generator with a dry run: load (the descriptor's ``pipeline:`` section, the toolkit's
components and their ``spec: inputs``) → validate (every input declared, typed, within its options and
regex; required ones given) → render in memory (Jinja2, ``templates/service-pipeline.yml.j2``) → lint the
result twice (as written, and with every component expanded in place, so stages and jobs are checked as
GitLab will see them) → write atomically, and only if all of that passed.

No value decides the rendered file's structure: every input value, input name and stage is emitted as one
YAML scalar (plain where that reads back as the same string to PyYAML and to GitLab's Psych, quoted where not:
single-quoted as PyYAML would, or double-quoted with escapes when it holds a line break or another control
character), and the rendered text is read back and compared with what was meant before anything is written.
A stage, the component path, the version and the descriptor's path may hold no control character at all.

A descriptor's section (every key optional)::

    pipeline:
      version: "1"                     # the toolkit's component version to pin
      components: [build, test, deploy-staging, pages]
      inputs:
        test: {tox-envs: "lint,test,docs,spec"}
        deploy-staging: {url: "https://orders.staging.example.com"}
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autocore.errors import ToolkitError
from autocore.files import write_atomic
from autocore.issues import SEVERITY_ERROR, Issue
from autocore.loading import load_yaml, yaml_problem
from autocore.names import has_control, is_valid
from pipelines.errors import PipelinesConfigError
from pipelines.gitlab_regex import GitLabRegexError, gitlab_regex, regex_search
from pipelines.gitlab_yaml import load_pipeline, parse_pipeline
from pipelines.includes import IncludeSettings
from pipelines.lint import LintOptions, lint_document
from pipelines.locations import DEFAULT_COMPONENT_PATH, TEMPLATES_DIR, check_component_path

PIPELINE_TEMPLATE = "service-pipeline.yml.j2"
DEFAULT_COMPONENTS = ("build", "test", "deploy-staging", "pages")
DEFAULT_VERSION = "1"
# Stages in pipeline order; a component whose stage input names another stage goes after these.
STAGE_ORDER = ("build", "test", "deploy", "pages")
PIPELINE_KEYS = {"version", "components", "inputs"}
_VERSION = re.compile(r"~latest|[0-9]+(\.[0-9]+){0,2}|[0-9a-f]{40}")  # matched whole (is_valid)
# A component's name is its file's: it is written unquoted into ``component: PATH/NAME@VERSION``.
_COMPONENT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Component:
    """One of the toolkit's CI/CD components: ``templates/NAME.yml``."""

    name: str
    inputs: dict[str, Any]  # the spec's declarations
    body: dict[str, Any]


@dataclass(frozen=True)
class ChosenComponent:
    """A component as the service includes it, with the inputs written into its ``include:``."""

    name: str
    inputs: dict[str, Any]
    stage: str


@dataclass
class RenderResult:
    """The rendered pipeline, what it is made of, and what lint said of it."""

    text: str
    descriptor: str
    components: list[ChosenComponent]
    stages: list[str]
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No lint errors (warnings allowed)."""
        return not any(i.severity == SEVERITY_ERROR for i in self.issues)


# --------------------------------------------------------------------------- load


def load_components(templates_dir: str | Path = TEMPLATES_DIR) -> dict[str, Component]:
    """The CI/CD components in ``templates_dir``: every ``NAME.yml`` with a ``spec:`` header."""
    directory = Path(templates_dir)
    if not directory.is_dir():
        raise PipelinesConfigError(f"{directory}: no such templates directory; pass --templates DIR")
    components = {}
    for path in sorted(directory.glob("*.yml")):
        spec, body = load_pipeline(path)
        if spec is None:
            continue
        if not is_valid(_COMPONENT_NAME, path.stem):
            raise PipelinesConfigError(
                f"{path}: {path.stem!r} is not a component name GitLab accepts (letters, digits, _ . -)"
            )
        inputs = spec.get("inputs") if isinstance(spec.get("inputs"), dict) else {}
        components[path.stem] = Component(
            path.stem, {k: v if isinstance(v, dict) else {} for k, v in inputs.items()}, body
        )
    if not components:
        raise PipelinesConfigError(f"{directory}: holds no CI/CD component (a .yml with a spec: header)")
    return components


def load_descriptor(path: str | Path) -> tuple[str, dict[str, Any]]:
    """A service descriptor's ``name`` and its ``pipeline:`` section (empty when it has none)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelinesConfigError(f"{source}: no such file; pass the service's auto-service.yml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelinesConfigError(f"cannot read {source}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        raw = load_yaml(text, source)  # strict, and within the loader's budgets (an alias bomb is refused)
    except ToolkitError as exc:  # past a budget, or a number that is not finite
        raise PipelinesConfigError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise PipelinesConfigError(yaml_problem(exc, source)) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise PipelinesConfigError(f"{source}: not a service descriptor (a mapping with name, version, docs, spec)")
    section = raw.get("pipeline", {})
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise PipelinesConfigError(f"{source}: pipeline must be a mapping with version, components and inputs")
    unknown = sorted(set(section) - PIPELINE_KEYS)
    if unknown:
        allowed = ", ".join(sorted(PIPELINE_KEYS))
        raise PipelinesConfigError(f"{source}: pipeline: unknown key {unknown[0]!r} (allowed: {allowed})")
    return raw["name"], section


# --------------------------------------------------------------------------- validate


def parse_input_assignment(text: str) -> tuple[str, str, str]:
    """``COMPONENT.NAME=VALUE`` (the command line's ``--input``) as its three parts."""
    target, sep, value = text.partition("=")
    component, dot, name = target.partition(".")
    if not sep or not dot or not component or not name:
        raise PipelinesConfigError(f"--input {text!r}: write COMPONENT.INPUT=VALUE, e.g. test.tox-envs=lint,test")
    return component, name, value


def coerce_input(component: str, name: str, declared: Mapping[str, Any], value: Any) -> Any:
    """``value`` as the declared input type wants it (text from the command line is converted)."""
    kind = declared.get("type", "string")
    where = f"input {component}.{name}"
    if isinstance(value, str) and kind != "string":
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise PipelinesConfigError(f"{where}: {value!r} is not a {kind}") from None
    if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # YAML's 3.11 is the text "3.11" to a string input
    ok = {
        "string": isinstance(value, str),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
    }.get(kind, False)
    if not ok:
        raise PipelinesConfigError(f"{where}: {value!r} is not a {kind}")
    if isinstance(value, float) and not math.isfinite(value):
        raise PipelinesConfigError(f"{where}: {value!r} is not a finite number")
    if not _utf8(value):
        # A command-line byte that is not UTF-8 arrives as a lone surrogate: no file could hold it.
        raise PipelinesConfigError(f"{where}: {value!r} is not UTF-8 text")
    options = declared.get("options")
    if isinstance(options, list) and value not in options:
        shown = ", ".join(str(o) for o in options)
        raise PipelinesConfigError(f"{where}: {value!r} is not one of its options ({shown})")
    regex = declared.get("regex")
    if isinstance(regex, str) and isinstance(value, str):
        try:
            compiled = gitlab_regex(regex)  # RE2, as GitLab matches it: linear time, no backtracking
        except GitLabRegexError as exc:
            raise PipelinesConfigError(f"{where}: its regex {regex!r} {exc.reason}") from None
        if not regex_search(compiled, value):
            raise PipelinesConfigError(f"{where}: {value!r} does not match {regex}")
    return value


def _utf8(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(_utf8(v) for v in value)
    if isinstance(value, dict):
        return all(_utf8(k) and _utf8(v) for k, v in value.items())
    return True


def _stage_of(component: Component, inputs: Mapping[str, Any]) -> str:
    if "stage" in inputs:
        return str(inputs["stage"])
    declared = component.inputs.get("stage", {})
    if "default" in declared:
        return str(declared["default"])
    stage = component.body.get(component.name, {}).get("stage") if isinstance(component.body, dict) else None
    return stage if isinstance(stage, str) and "$[[" not in stage else "test"


def choose(
    available: Mapping[str, Component],
    service: str,
    section: Mapping[str, Any],
    *,
    components: Sequence[str] | None = None,
    overrides: Sequence[tuple[str, str, str]] = (),
    descriptor_name: str = "auto-service.yml",
    source: str = "descriptor",
) -> list[ChosenComponent]:
    """Validate the choice of components and their inputs; fill ``service`` and ``descriptor`` inputs."""
    names = list(components) if components is not None else section.get("components", list(DEFAULT_COMPONENTS))
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise PipelinesConfigError(f"{source}: pipeline: components must be a non-empty list of names")
    known = ", ".join(sorted(available))
    for name in names:
        if name not in available:
            raise PipelinesConfigError(f"unknown component {name!r} (the toolkit has: {known})")
    if len(set(names)) != len(names):
        raise PipelinesConfigError(f"{source}: a component is chosen twice ({', '.join(names)})")
    given = section.get("inputs", {}) or {}
    if not isinstance(given, dict) or not all(isinstance(v, dict) for v in given.values()):
        raise PipelinesConfigError(f"{source}: pipeline: inputs must map a component to its inputs")
    for name in given:
        # Inputs for a component the command line left out are the descriptor's, and simply unused.
        if name not in names and components is None:
            raise PipelinesConfigError(f"{source}: pipeline: inputs for {name!r}, which is not among the components")
    merged: dict[str, dict[str, Any]] = {name: dict(given.get(name, {})) for name in names}
    for component, name, value in overrides:
        if component not in merged:
            raise PipelinesConfigError(f"--input {component}.{name}: {component!r} is not among the chosen components")
        merged[component][name] = value
    chosen = []
    for name in names:
        declared = available[name].inputs
        inputs = merged[name]
        for key in inputs:
            if key not in declared:
                raise PipelinesConfigError(
                    f"component {name} has no input {key!r} (it has: {', '.join(sorted(declared))})"
                )
        if "service" in declared and "service" not in inputs:
            inputs["service"] = service
        if "descriptor" in declared and "descriptor" not in inputs:
            inputs["descriptor"] = descriptor_name
        values = {key: coerce_input(name, key, declared[key], value) for key, value in inputs.items()}
        for key, spec in declared.items():
            if "default" not in spec and key not in values:
                hint = spec.get("description", "")
                hint = f" ({hint.rstrip('.')})" if hint else ""
                raise PipelinesConfigError(
                    f"component {name} needs input {key!r}{hint}: set pipeline.inputs.{name}.{key} in the "
                    f"descriptor or pass --input {name}.{key}=VALUE"
                )
        ordered = {key: values[key] for key in declared if key in values}  # spec order: a stable file
        stage = _stage_of(available[name], values)
        if has_control(stage):
            # A stage is a name: in stages: and in each job's stage:, where a line break starts another key.
            raise PipelinesConfigError(
                f"component {name}: stage {stage!r} holds a control character; GitLab expects a stage name"
            )
        chosen.append(ChosenComponent(name, ordered, stage))
    return chosen


def stages_of(chosen: Sequence[ChosenComponent]) -> list[str]:
    """The ``stages:`` list: the usual order first, then any other stage in the order components use it."""
    used = [c.stage for c in chosen]
    ordered = [s for s in STAGE_ORDER if s in used]
    for stage in used:
        if stage not in ordered and stage not in (".pre", ".post"):
            ordered.append(stage)
    return ordered


# --------------------------------------------------------------------------- render


# Characters a scalar never carries as themselves: C0/C1 controls, DEL, YAML's other line breaks (NEL, LS, PS),
# the invisible ones that change how the text around them reads (zero-width, bidi overrides), the BOM,
# surrogates and the two non-characters YAML refuses in a stream.
_ESCAPED = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff\ufffe\uffff]")
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
# Plain text that GitLab's YAML (Ruby's Psych, YAML 1.1 with extras) reads as something else than PyYAML does:
# ``:name`` is a Symbol; Psych's numbers may hold commas (``1,000`` is 1000) and start sexagesimals with 0
# (``0:30`` is 30); its booleans, null and .inf/.nan ignore case (``yEs`` is true).
_PSYCH_SYMBOL = re.compile(r":.+", re.DOTALL)
_PSYCH_NUMBER = re.compile(r"[-+]?[0-9.][0-9a-fA-FxXbB_,.:eE+-]*")
_PSYCH_WORD = re.compile(r"yes|no|true|false|on|off|null|[-+]?\.inf|\.nan", re.IGNORECASE)


def _psych_reads_otherwise(plain: str) -> bool:
    """Whether GitLab would read this plain scalar, which PyYAML reads as the string itself, as another type."""
    if _PSYCH_SYMBOL.fullmatch(plain) or _PSYCH_WORD.fullmatch(plain):
        return True
    return ("," in plain or ":" in plain) and _PSYCH_NUMBER.fullmatch(plain) is not None


def _double_quoted(text: str) -> str:
    """``text`` as a one-line double-quoted YAML scalar: every character that could end a line, or hide, escaped."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if char in _SHORT_ESCAPES:
            return _SHORT_ESCAPES[char]
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return '"' + re.sub(r'[\\"]|' + _ESCAPED.pattern, escape, text) + '"'


def _dump(value: Any) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, width=sys.maxsize, allow_unicode=True)
        .removesuffix("\n")
        .removesuffix("\n...")
    )


def _yaml_scalar(value: Any, *, flow: bool = False) -> str:
    """``value`` as one YAML node on one line, in block context (a mapping value, a list item, a key) or in a
    flow collection (``flow``). PyYAML's own spelling is kept where it is safe, so that files rendered before
    stay byte-identical: plain when that reads back as the same string, else PyYAML's single quotes."""
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_scalar(v, flow=True) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_yaml_scalar(k, flow=True)}: {_yaml_scalar(v, flow=True)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if not isinstance(value, str):
        return _dump(value)  # null, a boolean, a number: PyYAML's spelling is YAML's
    if _ESCAPED.search(value):
        return _double_quoted(value)
    dumped = _dump([value])[1:-1] if flow else _dump(value)
    if "\n" in dumped:  # PyYAML folds long or multi-line text over several lines: not here
        return _double_quoted(value)
    if dumped == value and _psych_reads_otherwise(value):
        return _double_quoted(value)
    return dumped


def _yaml_value(value: Any) -> str:
    """One YAML scalar or flow collection on one line: an input's value in ``include: inputs:``."""
    return _yaml_scalar(value)


@dataclass(frozen=True)
class _TemplateComponent:
    """A chosen component as the template sees it: input names already spelled as YAML keys."""

    name: str
    inputs: dict[str, Any]


def render_text(
    chosen: Sequence[ChosenComponent],
    *,
    descriptor: str,
    version: str = DEFAULT_VERSION,
    component_path: str = DEFAULT_COMPONENT_PATH,
    templates_dir: str | Path = TEMPLATES_DIR,
) -> str:
    """The ``.gitlab-ci.yml`` text (Jinja2, in memory)."""
    import jinja2  # only rendering needs it: not loaded for the other subcommands

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - YAML, not HTML; values go through yaml_value
    )
    environment.filters["yaml_value"] = _yaml_value
    try:
        template = environment.get_template(PIPELINE_TEMPLATE)
    except jinja2.TemplateNotFound:
        raise PipelinesConfigError(f"{templates_dir}: no {PIPELINE_TEMPLATE}; pass --templates DIR") from None
    # The template writes these as they come: each is spelled as one YAML scalar here, never by a value.
    components = [_TemplateComponent(c.name, {_yaml_scalar(k): v for k, v in c.inputs.items()}) for c in chosen]
    return template.render(
        components=components,
        stages=[_yaml_scalar(stage) for stage in stages_of(chosen)],
        descriptor=descriptor,
        version=version,
        component_path=component_path,
    )


def _check_read_back(
    text: str, label: str, chosen: Sequence[ChosenComponent], *, version: str, component_path: str
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Parse the rendered ``text`` and refuse it unless its includes and stages are exactly the ones meant.

    A value that broke out of its scalar would have been cut short where it did, so comparing every value read
    back with the one given proves that no value changed the file's structure. Returns the parse, for lint.
    """
    spec, body = parse_pipeline(text, label)
    meant_include = [
        {"component": f"{component_path}/{c.name}@{version}", **({"inputs": dict(c.inputs)} if c.inputs else {})}
        for c in chosen
    ]
    for key, meant in (("include", meant_include), ("stages", stages_of(chosen))):
        if body.get(key) != meant:
            raise PipelinesConfigError(
                f"{label}: its {key}: does not read back as rendered (a value changed the YAML): nothing written"
            )
    return spec, body


def render(
    descriptor: str | Path,
    *,
    components: Sequence[str] | None = None,
    overrides: Sequence[tuple[str, str, str]] = (),
    version: str | None = None,
    component_path: str = DEFAULT_COMPONENT_PATH,
    templates_dir: str | Path = TEMPLATES_DIR,
    out: str | Path | None = None,
) -> RenderResult:
    """Load, validate, render and lint; writes nothing. ``out`` only decides relative paths in the file."""
    service, section = load_descriptor(descriptor)
    chosen_version = version if version is not None else str(section.get("version", DEFAULT_VERSION))
    if not is_valid(_VERSION, chosen_version):
        raise PipelinesConfigError(
            f"component version {chosen_version!r}: use a release (1, 1.2, 1.2.3), ~latest or a commit SHA"
        )
    check_component_path(component_path)
    available = load_components(templates_dir)
    # Paths in the file are relative to where it lives: beside the descriptor unless --out says otherwise.
    out_dir = Path(out).resolve().parent if out not in (None, "-") else Path(descriptor).resolve().parent
    descriptor_name = Path(os.path.relpath(Path(descriptor).resolve(), out_dir)).as_posix()
    if has_control(descriptor_name):
        # It is written into the file's first comment line, where a line break would start YAML of its own.
        raise PipelinesConfigError(f"descriptor path {descriptor_name!r}: holds a control character; rename it")
    chosen = choose(
        available,
        service,
        section,
        components=components,
        overrides=overrides,
        descriptor_name=descriptor_name,
        source=str(descriptor),
    )
    text = render_text(
        chosen,
        descriptor=descriptor_name,
        version=chosen_version,
        component_path=component_path,
        templates_dir=templates_dir,
    )
    label = str(out) if out not in (None, "-") else "<rendered>"
    spec, body = _check_read_back(text, label, chosen, version=chosen_version, component_path=component_path)
    # Linted as GitLab will see it: the components it includes read from templates_dir, their inputs filled in.
    includes = IncludeSettings(component_path=component_path, templates_dir=Path(templates_dir))
    issues = lint_document(label, spec, body, LintOptions(includes=includes))
    return RenderResult(text, descriptor_name, chosen, stages_of(chosen), issues)


# --------------------------------------------------------------------------- write


def drift(result: RenderResult, path: str | Path) -> list[str]:
    """A unified diff from the file at ``path`` to the rendered text; empty when they are the same."""
    try:
        current = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        current = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelinesConfigError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            result.text.splitlines(keepends=True),
            fromfile=f"{path} (committed)",
            tofile=f"{path} (rendered)",
        )
    )


def write_atomically(text: str, path: str | Path) -> None:
    """Replace ``path`` with ``text`` in one rename; its folder must exist (a typo is not a new folder)."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise PipelinesConfigError(f"{directory}: no such directory to write {target.name} into")
    write_atomic(target, text)
