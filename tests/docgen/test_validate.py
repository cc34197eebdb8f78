"""docgen.validate and ``auto-docs validate``: offline spec validation against a small corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autocore.issues import Issue
from autocore.text import json_path
from docgen import cli
from docgen.errors import ConfigError, InvalidSpecError
from docgen.validate import duplicate_operation_ids, load_spec, validate, validate_file

CORPUS = Path(__file__).parent / "corpus"


pytestmark = pytest.mark.usefixtures("no_network")  # offline: any connection attempt fails


def only(issues: list[Issue], rule: str) -> Issue:
    matching = [i for i in issues if i.rule == rule]
    assert len(matching) == 1, issues
    return matching[0]


@pytest.mark.parametrize(
    ("name", "version"),
    [("good-swagger2.yaml", "2.0"), ("good-openapi30.yaml", "3.0.3"), ("good-openapi31.json", "3.1.0")],
)
def test_valid_specs_have_no_issues(name: str, version: str) -> None:
    result = validate_file(CORPUS / name)
    assert result.issues == []
    assert result.ok
    assert result.version == version
    assert result.service == Path(name).stem


def test_two_body_parameters() -> None:
    result = validate_file(CORPUS / "two-bodies.yaml")
    assert not result.ok
    assert result.issues == [
        Issue(
            service="two-bodies",
            source=str(CORPUS / "two-bodies.yaml"),
            path="$.paths['/items/{id}'].post.parameters[2]",
            message="POST /items/{id} has 2 body parameters ('item', 'meta'); Swagger 2.0 allows at most one",
            rule="multiple-body",
        )
    ]


def test_path_level_body_parameter_merged_and_overridden() -> None:
    issues = validate_file(CORPUS / "path-level-body.yaml").issues
    issue = only(issues, "multiple-body")  # PUT adds a second body; POST overrides the path-level 'item'
    assert issue.path == "$.paths['/items'].put.parameters[0]"
    assert "('item', 'other')" in issue.message


def test_body_and_formdata() -> None:
    issue = only(validate_file(CORPUS / "body-and-formdata.yaml").issues, "body-and-formdata")
    assert issue.path == "$.paths['/upload'].post"
    assert "body parameter ('meta') and formData parameters ('file')" in issue.message


def test_unknown_key_in_operation_is_a_schema_error() -> None:
    issue = only(validate_file(CORPUS / "unknown-key.yaml").issues, "schema")
    assert issue.path == "$.paths['/items'].get.returns"  # the unexpected key itself
    assert issue.message == "unexpected property 'returns'"


def test_path_template_parameters() -> None:
    issues = [i for i in validate_file(CORPUS / "path-params.yaml").issues if i.rule == "path-params"]
    assert [(i.path, i.rule) for i in issues] == [
        ("$.paths['/items/{id}'].get", "path-params"),
        ("$.paths['/things'].get.parameters[0]", "path-params"),
    ]
    assert "{id} of GET /items/{id} has no 'in: path' parameter" in issues[0].message
    assert "'thingId' does not appear in the path template '/things'" in issues[1].message


def test_duplicate_operation_id_within_a_spec() -> None:
    issue = only(validate_file(CORPUS / "duplicate-operation-id.yaml").issues, "duplicate-operation-id")
    assert issue.path == "$.paths['/b'].get.operationId"
    assert "'getThing' is already used by GET /a" in issue.message


def test_duplicate_operation_id_across_services() -> None:
    specs = {
        "orders": load_spec(CORPUS / "good-openapi30.yaml")[0],
        "billing": load_spec(CORPUS / "orders-also-getorder.yaml")[0],
    }
    issue = only(duplicate_operation_ids(specs), "duplicate-operation-id")
    assert (issue.service, issue.path) == ("billing", "$.paths['/invoices/{orderId}'].get.operationId")
    assert "also used by service 'orders' (GET /orders/{orderId})" in issue.message


def test_unresolved_local_ref_and_refs_in_examples_are_data() -> None:
    issue = only(validate_file(CORPUS / "unresolved-ref.yaml").issues, "unresolved-ref")
    assert issue.path == "$.paths['/items'].get.responses['200'].content['application/json'].schema['$ref']"
    assert "'#/components/schemas/Itme' does not resolve" in issue.message


def test_external_ref_is_reported_not_fetched() -> None:
    issue = only(validate_file(CORPUS / "external-ref.yaml").issues, "unresolved-ref")
    assert issue.path == "$.paths['/items'].get.responses['200'].schema['$ref']"
    assert "was not fetched: validation is offline" in issue.message


def test_all_problems_are_reported_not_only_the_first() -> None:
    document = load_spec(CORPUS / "two-bodies.yaml")[0]
    document["paths"]["/items/{id}"]["post"]["parameters"].append({"name": "f", "in": "formData", "type": "string"})
    document["paths"]["/items/{id}"]["post"]["returns"] = "x"
    document["paths"]["/other"] = {"get": {"operationId": "updateItem", "responses": {"200": {"description": "ok"}}}}
    rules = {i.rule for i in validate(document, service="svc", source="mem")}
    assert rules == {"multiple-body", "body-and-formdata", "schema", "duplicate-operation-id"}


def test_not_openapi_at_all() -> None:
    issues = validate({"info": {}}, service="svc", source="mem")
    assert [(i.path, i.rule) for i in issues] == [("$", "version")]


def test_raise_for_issues_is_one_line() -> None:
    with pytest.raises(InvalidSpecError, match=r"1 issue\(s\), first: .*\[multiple-body\]$") as caught:
        validate_file(CORPUS / "two-bodies.yaml").raise_for_issues()
    assert caught.value.exit_code == 3


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("duplicate-key.yaml", r"duplicate-key\.yaml:4: not valid YAML: found duplicate key 'info'$"),
        ("unparsable.yaml", r"unparsable\.yaml:2: not valid YAML: "),
        ("missing.yaml", r"missing\.yaml: no such file$"),
    ],
)
def test_load_errors_are_config_errors_with_line(name: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        load_spec(CORPUS / name)
    assert caught.value.exit_code == 2
    assert "\n" not in str(caught.value)


def test_json_errors_and_duplicates(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "openapi": "3.0.3",\n  "info": \n}\n')
    with pytest.raises(ConfigError, match=r"bad\.json:4: not valid JSON"):
        load_spec(bad)
    bad.write_text('{"openapi": "3.0.3", "openapi": "3.1.0"}')
    with pytest.raises(ConfigError, match="duplicate key 'openapi'"):
        load_spec(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="top level is a list"):
        load_spec(bad)


def test_json_path() -> None:
    assert json_path(["paths", "/items/{id}", "post", "parameters", 1]) == "$.paths['/items/{id}'].post.parameters[1]"
    assert json_path(["x", "it's"]) == "$.x['it\\'s']"


def test_real_world_petstore_shipped_with_jsonschema() -> None:
    import jsonschema

    bundled = Path(jsonschema.__file__).parent / "benchmarks" / "issue232" / "issue.json"
    # jsonschema (a dependency of openapi-spec-validator) ships it; its absence is a failure, not a skip.
    assert bundled.is_file(), f"jsonschema no longer ships {bundled}: pick another real-world spec"
    document = json.loads(bundled.read_text())[0]["tests"][0]["data"]
    assert document["swagger"] == "2.0"
    issues = validate(document, service="petstore", source=str(bundled))
    assert issues == []


# --------------------------------------------------------------------------- CLI


def test_cli_all_valid_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["validate", str(CORPUS / "good-swagger2.yaml"), str(CORPUS / "good-openapi31.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert out == "2 spec(s) checked: 2 valid, 0 with 0 issue(s)\n"


def test_cli_issues_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["validate", str(CORPUS / "good-openapi30.yaml"), str(CORPUS / "two-bodies.yaml")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 3
    assert lines[0] == (
        "two-bodies: $.paths['/items/{id}'].post.parameters[2]: POST /items/{id} has 2 body parameters"
        " ('item', 'meta'); Swagger 2.0 allows at most one [multiple-body]"
    )
    assert lines[-1] == "2 spec(s) checked: 1 valid, 1 with 1 issue(s)"


def test_cli_cross_service_duplicates(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["validate", str(CORPUS / "good-openapi30.yaml"), str(CORPUS / "orders-also-getorder.yaml")])
    out = capsys.readouterr().out
    assert code == 3
    assert "orders-also-getorder: $.paths['/invoices/{orderId}'].get.operationId: " in out
    assert "[duplicate-operation-id]" in out


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["validate", "--json", str(CORPUS / "external-ref.yaml")])
    results = json.loads(capsys.readouterr().out)
    assert code == 3
    assert [(r["service"], r["version"], r["ok"]) for r in results] == [("external-ref", "2.0", False)]
    assert results[0]["issues"][0]["rule"] == "unresolved-ref"


def test_cli_missing_file_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["validate", str(CORPUS / "missing.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"Error: {CORPUS / 'missing.yaml'}: no such file\n"


def test_cli_unparsable_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["validate", str(CORPUS / "good-openapi30.yaml"), str(CORPUS / "unparsable.yaml")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and captured.err.startswith("Error: ")
    assert "1 unreadable" in captured.out


def test_cli_bad_command_line_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["validate"])
    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert err.startswith("Error: ") and err.count("\n") == 1


def test_a_default_of_the_wrong_type_is_located_and_ecma_regexes_are_accepted() -> None:
    result = validate_file(CORPUS / "bad-default.yaml")
    # The walk knows where each default is (never searched for by value).
    # The \p{L} pattern is a valid ECMA-262 regex (checked with regress), so it is not reported.
    assert [(i.path, i.message, i.rule) for i in result.issues] == [
        (
            "$.paths['/invoices'].get.parameters[0].schema.default",
            'default does not conform to the schema\'s type: expected a number, found a string ("101.22")',
            "default",
        )
    ]


def test_only_the_entries_jsonschema_rs_flags_are_explained_and_nothing_is_lost() -> None:
    """The precise (slow) validator sees only the flagged path items and components: the messages are the same
    as on the whole document, wherever the slips are."""
    from docgen.spec_schemas import version_schema
    from docgen.validate import _flagged_only

    paths = {f"/items/{n}": {"get": {"responses": {"200": {"description": "ok"}}}} for n in range(300)}
    paths["/items/7"]["get"]["responses"]["200"] = {"descripton": "typo"}
    schemas = {f"S{n}": {"type": "object"} for n in range(300)}
    schemas["S3"] = {"type": "object", "properties": 5}
    document = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    schema = version_schema("3.0")
    precise, fast = schema.precise, schema.fast
    if fast is None:
        pytest.fail("jsonschema-rs is a dependency: its validators must be there")
    pruned = _flagged_only(document, fast)
    assert set(pruned["paths"]) == {"/items/7"} and set(pruned["components"]["schemas"]) == {"S3"}
    whole = sorted((list(e.absolute_path), e.message) for e in precise.iter_errors(document))
    assert sorted((list(e.absolute_path), e.message) for e in precise.iter_errors(pruned)) == whole
    issues = validate(document, service="s", source="s.yaml")
    assert {i.path.split(".get")[0].split(".properties")[0] for i in issues} >= {"$.paths['/items/7']"}
    # An error outside the big maps: the whole document is explained.
    assert _flagged_only({**document, "info": {"title": 5}}, fast)["paths"] is paths
