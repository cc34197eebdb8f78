"""docgen.validate's messages and verdicts, each on a real spec with one thing changed.

The real specs are under ``corpus/realworld-github/`` (``INDEX.tsv`` pins each to its repository, commit
and licence): harbor's and moby's Swagger 2.0 files, the OpenAPI Initiative's petstore-expanded (3.0) and
tictactoe (3.1). Every test asserts the exact path and message: the path is the node the message is about,
as it exists in the document.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest

from autocore.issues import SEVERITY_ERROR, SEVERITY_WARNING
from docgen.validate import load_spec, validate

REAL = Path(__file__).parent / "corpus" / "realworld-github"
# goharbor/harbor@c50c7ddd6ea4e335a480b49c618281882ab7eec9 api/v2.0/swagger.yaml (Apache-2.0)
HARBOR = REAL / "harbor-swagger.yaml"
# moby/moby@b985e2313a8676e18072b442911fc8f64f17d440 api/swagger.yaml (Apache-2.0)
MOBY = REAL / "moby-swagger.yaml"
# OAI/OpenAPI-Specification@46c1076ba6f9a7a09ecaa6b740ab603cf6cc9886 _archive_/schemas/v3.0/pass/petstore-expanded.yaml
PETSTORE = REAL / "petstore-expanded-3.0.yaml"
# OAI/learn.openapis.org@cff6533ce5444b144946ef6ae2722c34ef6769e0 examples/v3.1/tictactoe.yaml (CC-BY-4.0)
TICTACTOE = REAL / "tictactoe-3.1.yaml"
E, W = SEVERITY_ERROR, SEVERITY_WARNING


pytestmark = pytest.mark.usefixtures("no_network")  # offline: any connection attempt fails


@functools.cache
def _loaded(path: Path) -> dict[str, Any]:
    return load_spec(path)[0]


def real(path: Path, *, only: str | None = None) -> dict[str, Any]:
    """A copy of a real spec; with ``only``, just that one path item (and everything it may refer to)."""
    document = copy.deepcopy(_loaded(path))
    if only is not None:
        document["paths"] = {only: document["paths"][only]}
    return document


def found(document: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(severity, rule, path, message)`` of every issue."""
    return [(i.severity, i.rule, i.path, i.message) for i in validate(document, service="svc", source="spec")]


@pytest.mark.parametrize("path", [HARBOR, MOBY, PETSTORE, TICTACTOE])
def test_the_real_specs_as_published_have_no_issues(path: Path) -> None:
    # harbor (type: file responses) and moby (default: null, x-nullable) were quarantined before.
    assert found(real(path)) == []


# --------------------------------------------------------------------------- the kinds of message


def test_missing_required_true_on_a_path_parameter_is_named_not_a_ref() -> None:
    document = real(HARBOR, only="/ldap/ping")
    del document["parameters"]["projectName"]["required"]
    assert found(document) == [
        (
            E,
            "schema",
            "$.parameters.projectName",
            "missing required field 'required' (a path parameter must say 'required: true')",
        )
    ]


def test_a_pattern_that_is_an_integer_is_a_wrong_type() -> None:
    document = real(HARBOR, only="/ldap/ping")
    document["parameters"]["query"]["pattern"] = 0
    assert found(document) == [(E, "schema", "$.parameters.query.pattern", "expected a string, found an integer (0)")]


def test_a_misspelled_key_is_unexpected_with_the_closest_name() -> None:
    document = real(HARBOR, only="/ldap/ping")
    body = document["paths"]["/ldap/ping"]["post"]["parameters"][1]
    body["schemaa"] = body.pop("schema")
    where = "$.paths['/ldap/ping'].post.parameters[1]"
    assert found(document) == [
        (E, "schema", where, "missing required field 'schema'"),
        (E, "schema", f"{where}.schemaa", "unexpected property 'schemaa': did you mean 'schema'?"),
    ]


def test_a_misspelled_key_in_a_30_parameter() -> None:
    document = real(PETSTORE)
    param = document["paths"]["/pets/{id}"]["get"]["parameters"][0]
    param["schemaa"] = param.pop("schema")
    where = "$.paths['/pets/{id}'].get.parameters[0]"
    assert found(document) == [
        (E, "schema", f"{where}.schemaa", "unexpected property 'schemaa': did you mean 'schema'?"),
        (E, "schema", where, "missing required field 'schema'"),
    ]


def test_a_wrong_value_of_a_fixed_set_names_the_choices() -> None:
    document = real(PETSTORE)
    document["paths"]["/pets/{id}"]["get"]["parameters"][0]["in"] = "paht"
    assert found(document)[0] == (
        E,
        "schema",
        "$.paths['/pets/{id}'].get.parameters[0].in",
        'expected one of "path", "query", "header", "cookie"; found "paht": did you mean "path"?',
    )


def test_security_written_as_a_mapping_is_a_wrong_type_31() -> None:
    document = real(TICTACTOE)
    document["paths"]["/board"]["get"]["security"] = {"defaultApiKey": []}
    assert found(document) == [
        (E, "schema", "$.paths['/board'].get.security", "expected an array, found an object"),
    ]


# --------------------------------------------------------------------------- defaults, located by walking


def test_wrong_defaults_are_each_located_and_a_valid_example_is_not_blamed() -> None:
    document = real(MOBY, only="/_ping")
    properties = document["definitions"]["ContainerConfig"]["properties"]
    strings = [name for name, schema in properties.items() if schema.get("type") == "string"][:3]
    for name in strings:
        properties[name]["default"] = False
    properties["Tty"]["example"] = False  # a boolean: valid, never named
    message = "default does not conform to the schema's type: expected a string, found a boolean (false)"
    assert found(document) == [
        (E, "default", f"$.definitions.ContainerConfig.properties.{name}.default", message) for name in strings
    ]


def test_default_null_on_a_20_schema_without_x_nullable_is_a_warning() -> None:
    document = real(MOBY, only="/_ping")
    del document["definitions"]["SwarmInfo"]["properties"]["RemoteManagers"]["x-nullable"]
    assert found(document) == [
        (
            W,
            "default",
            "$.definitions.SwarmInfo.properties.RemoteManagers.default",
            "default is null but the schema's type is an array; mark the schema x-nullable: true or remove the default",
        )
    ]


def test_a_20_parameter_default_of_the_wrong_type() -> None:
    document = real(HARBOR, only="/ldap/ping")
    document["parameters"]["page"]["default"] = "1"
    assert found(document) == [
        (
            E,
            "default",
            "$.parameters.page.default",
            'default does not conform to the schema\'s type: expected an integer, found a string ("1")',
        )
    ]


def test_an_empty_default_with_format_email_is_a_warning() -> None:
    document = real(PETSTORE)
    document["components"]["schemas"]["NewPet"]["properties"]["tag"].update(format="email", default="")
    assert found(document) == [
        (W, "default", "$.components.schemas.NewPet.properties.tag.default", 'default "" is not a valid email (format)')
    ]


def test_a_31_default_of_the_wrong_type_is_a_warning() -> None:
    document = real(TICTACTOE)
    document["components"]["schemas"]["coordinate"]["default"] = "1"
    assert found(document) == [
        (
            W,
            "default",
            "$.components.schemas.coordinate.default",
            'default does not conform to the schema\'s type: expected an integer, found a string ("1")',
        )
    ]


# --------------------------------------------------------------------------- verdicts


def test_type_file_at_the_root_of_a_20_response_schema_is_accepted_but_not_elsewhere() -> None:
    document = real(HARBOR, only="/systeminfo/getcert")
    assert document["paths"]["/systeminfo/getcert"]["get"]["responses"]["200"]["schema"] == {"type": "file"}
    assert found(document) == []
    document["definitions"]["LdapConf"]["properties"]["ldap_url"]["type"] = "file"
    assert found(document) == [
        (
            E,
            "schema",
            "$.definitions.LdapConf.properties.ldap_url.type",
            'expected one of "array", "boolean", "integer", "null", "number", "object", "string"; found "file"'
            " ('file' is a type only for a formData parameter and at the root of a response's schema)",
        )
    ]


def test_duplicate_enum_values_are_a_warning_in_30_and_an_error_in_20() -> None:
    document = real(PETSTORE)
    document["components"]["schemas"]["NewPet"]["properties"]["tag"]["enum"] = ["cat", "dog", "cat"]
    assert found(document) == [
        (
            W,
            "duplicate-enum",
            "$.components.schemas.NewPet.properties.tag.enum[2]",
            'enum value "cat" is listed more than once (the values SHOULD be unique)',
        )
    ]
    swagger = real(HARBOR, only="/ldap/ping")
    swagger["parameters"]["query"]["enum"] = ["a", "b", "a"]
    swagger["definitions"]["LdapConf"]["properties"]["ldap_scope"]["enum"] = [1, 2, 1]
    assert found(swagger) == [
        (
            E,
            "duplicate-enum",
            "$.definitions.LdapConf.properties.ldap_scope.enum[2]",
            "enum value 1 is listed more than once (the values MUST be unique)",
        ),
        (
            E,
            "duplicate-enum",
            "$.parameters.query.enum[2]",
            'enum value "a" is listed more than once (the values MUST be unique)',
        ),
    ]


def test_an_oauth2_scheme_without_scopes_is_an_error_in_20() -> None:
    document = real(HARBOR, only="/ldap/ping")
    document["securityDefinitions"]["sso"] = {
        "type": "oauth2",
        "flow": "accessCode",
        "authorizationUrl": "https://sso.example/authorize",
        "tokenUrl": "https://sso.example/token",
    }
    assert found(document) == [
        (
            E,
            "schema",
            "$.securityDefinitions.sso",
            "missing required field 'scopes' (an oauth2 scheme lists its scopes; 'scopes: {}' for none)",
        )
    ]


@pytest.mark.parametrize("path", [PETSTORE, TICTACTOE])
def test_an_oauth2_flow_without_scopes_is_an_error_in_3x(path: Path) -> None:
    document = real(path)
    flows = {"clientCredentials": {"tokenUrl": "https://sso.example/token"}}
    document["components"].setdefault("securitySchemes", {})["sso"] = {"type": "oauth2", "flows": flows}
    assert found(document) == [
        (
            E,
            "schema",
            "$.components.securitySchemes.sso.flows.clientCredentials",
            "missing required field 'scopes' (an oauth2 flow lists its scopes; 'scopes: {}' for none)",
        )
    ]


def test_unexpected_fields_in_a_30_discriminator() -> None:
    document = real(PETSTORE)
    document["components"]["schemas"]["Pet"]["discriminator"] = {
        "propertyName": "petType",
        "mappings": {"cat": "#/components/schemas/NewPet"},
        "x-go-type": "PetKind",
    }
    where = "$.components.schemas.Pet.discriminator"
    assert found(document) == [
        (
            E,
            "schema",
            f"{where}.mappings",
            "unexpected property 'mappings': did you mean 'mapping'? (a Discriminator has only propertyName, mapping)",
        ),
        (
            W,
            "schema",
            f"{where}['x-go-type']",
            "extension 'x-go-type' in a Discriminator: OpenAPI 3.0 does not allow extensions here (3.1 does)",
        ),
    ]


def test_unexpected_fields_in_a_31_discriminator() -> None:
    document = real(TICTACTOE)
    document["components"]["schemas"]["status"]["discriminator"] = {
        "propertyName": "winner",
        "mappings": {},
        "x-go-type": "Status",
    }
    assert found(document) == [
        (
            E,
            "schema",
            "$.components.schemas.status.discriminator.mappings",
            "unexpected property 'mappings': did you mean 'mapping'?",
        )
    ]


def test_duplicated_parameters_and_tags_are_located() -> None:
    document = real(PETSTORE)
    params = document["paths"]["/pets/{id}"]["get"]["parameters"]
    params.append(copy.deepcopy(params[0]))
    document["tags"] = [{"name": "pets"}, {"name": "pets", "description": "again"}]
    assert found(document) == [
        (
            E,
            "duplicate-parameter",
            "$.paths['/pets/{id}'].get.parameters[1]",
            "parameter 'id' in path is listed twice (first at parameters[0]); the list MUST NOT include duplicated"
            " parameters",
        ),
        (E, "schema", "$.tags[1].name", "tag 'pets' is declared twice (first at tags[0]); tag names MUST be unique"),
    ]
