"""docgen.merge keeps every reference whole (docgen.merge_refs): extension sections kept and namespaced, every
$ref rewritten wherever it sits, data left alone, and a merge that would leave a dangling ref fails loudly.

The real specs are under ``corpus/merge-realworld/`` (``INDEX.tsv`` pins each to its repository, commit, path and
licence): StackQL's Okta provider (``components/x-stackQL-resources`` whose refs point into ``paths`` and into the
section itself) and a CCF sample app (operations' ``x-ccf-forwarding`` pointing into ``components/x-ccf-forwarding``;
the ``openApiDoc`` object of ``swagger.ts`` written out as JSON).
"""

from __future__ import annotations

import copy
import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate as validate_openapi

from docgen.errors import DocgenError, InvalidSpecError
from docgen.merge import ServiceSpec, combine, fragment, merge
from docgen.merge_refs import DanglingRefError, check_refs, dangling_refs, ref_sites, resolves
from docgen.validate import load_spec

REAL = Path(__file__).parent / "corpus" / "merge-realworld"
INFO = {"title": "T", "version": "1"}
OK = {"description": "ok"}


pytestmark = pytest.mark.usefixtures("no_network")  # offline: any connection attempt fails


def real(name: str) -> dict[str, Any]:
    return load_spec(REAL / name)[0]


def real_specs() -> list[ServiceSpec]:
    return [
        ServiceSpec("directories", "v1", real("okta-directories.yaml")),
        ServiceSpec("threats", "v1", real("okta-threats.yaml")),
        ServiceSpec("first-party", "v1", real("okta-first_party_app_settings.yaml")),
        ServiceSpec("ccf", "v1", real("ccf-data-reconciliation.json")),
    ]


def all_refs(document: Any) -> list[str]:
    return [site.holder[site.key] for site in ref_sites(document)]


# --------------------------------------------------------------------------- real specs


def test_corpus_index_lists_every_file() -> None:
    lines = (REAL / "INDEX.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["file", "repository", "commit", "path", "licence"]
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == 5 and len(row[2]) == 40 for row in rows)
    assert sorted(row[0] for row in rows) == sorted(p.name for p in REAL.iterdir() if p.name != "INDEX.tsv")


def test_real_extension_sections_kept_namespaced_and_every_ref_resolves() -> None:
    specs = real_specs()
    before = copy.deepcopy([spec.document for spec in specs])
    for spec in specs:
        assert dangling_refs(spec.document) == []  # the services' own specs are whole
    doc = merge(specs, title="Platform", version="1").document
    assert [spec.document for spec in specs] == before
    assert dangling_refs(doc) == []

    # components/x-stackQL-resources: one section, entries namespaced per service, its refs into the routed paths
    # and into the section itself rewritten.
    resources = doc["components"]["x-stackQL-resources"]
    assert list(resources) == [
        "directories.directories_integration",
        "threats.current_configuration",
        "first-party.first_party_app_settings",
    ]
    membership = resources["directories.directories_integration"]
    assert membership["methods"]["update_adgroup_membership"]["operation"] == {
        "$ref": "#/paths/~1api~1directories~1v1~1api~1v1~1directories~1%7BappInstanceId%7D~1groups~1modify/post"
    }
    assert membership["sqlVerbs"]["update"] == [
        {
            "$ref": "#/components/x-stackQL-resources/directories.directories_integration/methods/"
            "update_adgroup_membership"
        }
    ]
    threats = resources["threats.current_configuration"]
    assert threats["sqlVerbs"]["select"] == [
        {"$ref": "#/components/x-stackQL-resources/threats.current_configuration/methods/get_current_configuration"}
    ]
    assert threats["methods"]["update_configuration"]["operation"] == {
        "$ref": "#/paths/~1api~1threats~1v1~1api~1v1~1threats~1configuration/post"
    }
    first_party = resources["first-party.first_party_app_settings"]["methods"]["get_first_party_app_settings"]
    assert first_party["operation"] == {
        "$ref": "#/paths/~1api~1first-party~1v1~1api~1v1~1first-party-app-settings~1%7BappName%7D/get"
    }

    # components/x-ccf-forwarding: referenced 9 times from the operations' x-ccf-forwarding.
    assert list(doc["components"]["x-ccf-forwarding"]) == ["ccf.always", "ccf.never", "ccf.sometimes"]
    forwarding = [
        op["x-ccf-forwarding"]
        for url, item in doc["paths"].items()
        if url.startswith("/api/ccf/")
        for op in item.values()
        if isinstance(op, dict) and "x-ccf-forwarding" in op
    ]
    assert forwarding == [{"$ref": "#/components/x-ccf-forwarding/ccf.sometimes"}] * 9
    # No ref is left un-namespaced.
    for ref in all_refs(doc):
        tokens = ref.split("/")
        if tokens[1] == "components":
            assert tokens[3].startswith(("directories.", "threats.", "first-party.", "ccf.")), ref
        else:
            assert ref.startswith("#/paths/~1api~1"), ref


def test_real_okta_specs_merged_are_valid_openapi() -> None:
    doc = merge(real_specs()[:3], title="Platform", version="1").document
    validate_openapi(doc)
    assert dangling_refs(doc) == []


# --------------------------------------------------------------------------- every kind of reference


def everything() -> dict[str, Any]:
    """An OpenAPI 3.1 document with a reference in every place one can sit, and refs that are data."""
    pet_ref = {"$ref": "#/components/schemas/Pet"}
    error = {"$ref": "#/components/responses/Error"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Everything", "version": "1", "x-logo": {"$ref": "#/components/schemas/Pet"}},
        "tags": [{"name": "pets", "x-display": {"$ref": "#/components/schemas/Pet"}}],
        "paths": {
            "/pets/{id}": {
                "get": {
                    "operationId": "getPet",
                    "parameters": [{"$ref": "#/components/parameters/Id"}],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": pet_ref,
                                    "examples": {
                                        "one": {"$ref": "#/components/examples/One"},
                                        "data": {"value": {"$ref": "#/components/schemas/NotRenamed"}},
                                    },
                                }
                            },
                            "links": {
                                "self": {"operationRef": "#/paths/~1pets~1{id}/get"},
                                "shared": {"$ref": "#/components/links/Self"},
                            },
                            "headers": {"X-Rate": {"$ref": "#/components/headers/Rate"}},
                        },
                        "default": {"$ref": "#/components/responses/Error"},
                    },
                    "callbacks": {"onEvent": {"$ref": "#/components/callbacks/Event"}},
                    "x-codeSamples": [{"lang": "shell", "source": {"$ref": "#/x-samples/curl"}}],
                    "x-some-ext": {
                        "$ref": "#/components/schemas/Pet",
                        "responses": {"default": {"$ref": "#/components/responses/Error"}},
                        "example": {"$ref": "#/components/schemas/NotRenamed"},
                    },
                    "x-integration": {"$ref": "#/components/x-integrations/lambda"},
                    "x-limits": {"$ref": "#/components/x-limits/0"},
                    "x-generated": {"$ref": "#/paths/x-generated/shared"},
                    "security": [{"key": []}],
                },
            },
            "/shared": {"$ref": "#/components/pathItems/Shared"},
            "x-generated": {"shared": {"description": "referenced from an operation"}},
            "x-unused": {"dropped": True},
        },
        "webhooks": {"petAdded": {"post": {"requestBody": {"$ref": "#/components/requestBodies/PetBody"}}}},
        "components": {
            "schemas": {
                "Pet": {
                    "type": "object",
                    "discriminator": {"propertyName": "kind", "mapping": {"cat": "#/components/schemas/Cat"}},
                    "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
                    "properties": {
                        "default": {"$ref": "#/components/schemas/Dog"},  # a property named "default"
                        "friend": {"default": {"$ref": "#/components/schemas/NotRenamed"}},
                        "kind": {"enum": [{"$ref": "#/components/schemas/NotRenamed"}], "const": {"$ref": "#/x"}},
                        "tags": {"type": "array", "examples": [{"$ref": "#/components/schemas/NotRenamed"}]},
                    },
                    "x-enum-reference": {"$ref": "#/components/schemas/Dog"},
                },
                "Cat": {"allOf": [{"$ref": "#/components/schemas/Base"}]},
                "Dog": {"allOf": [{"$ref": "#/components/schemas/Base"}]},
                "Base": {"type": "object", "properties": {"kind": {"type": "string"}}},
            },
            "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": pet_ref}}}},
            "parameters": {"Id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}},
            "examples": {"One": {"value": {"$ref": "#/components/schemas/NotRenamed"}}},
            "requestBodies": {"PetBody": {"content": {"application/json": {"schema": pet_ref}}}},
            "headers": {"Rate": {"schema": {"$ref": "#/components/schemas/Base"}}},
            "securitySchemes": {"key": {"type": "apiKey", "name": "k", "in": "header"}},
            "links": {"Self": {"operationRef": "#/paths/~1pets~1%7Bid%7D/get"}},
            "callbacks": {"Event": {"{$request.body#/url}": {"post": {"responses": {"200": error}}}}},
            "pathItems": {"Shared": {"get": {"operationId": "shared", "responses": {"200": OK}}}},
            "x-integrations": {"lambda": {"type": "aws_proxy", "next": {"$ref": "#/components/x-integrations/lambda"}}},
            "x-limits": [{"rate": 10, "schema": {"$ref": "#/components/schemas/Base"}}],
        },
        "x-samples": {"curl": "curl https://example.com/pets/1"},
        "x-tagGroups": [{"name": "own", "tags": ["pets"]}],
    }


def test_every_reference_rewritten_and_data_left_alone() -> None:
    document = everything()
    before = copy.deepcopy(document)
    part = fragment(ServiceSpec("zoo", "v1", document))
    assert document == before
    assert dangling_refs(part) == []  # (not validate_openapi: its resolver follows the "$ref"s of example data)

    op = part["paths"]["/api/zoo/v1/pets/{id}"]["get"]
    response = op["responses"]["200"]
    assert op["parameters"] == [{"$ref": "#/components/parameters/zoo.Id"}]
    assert op["responses"]["default"] == {"$ref": "#/components/responses/zoo.Error"}
    assert response["content"]["application/json"]["examples"] == {
        "one": {"$ref": "#/components/examples/zoo.One"},
        "data": {"value": {"$ref": "#/components/schemas/NotRenamed"}},  # data
    }
    assert response["links"] == {
        "self": {"operationRef": "#/paths/~1api~1zoo~1v1~1pets~1%7Bid%7D/get"},
        "shared": {"$ref": "#/components/links/zoo.Self"},
    }
    assert response["headers"] == {"X-Rate": {"$ref": "#/components/headers/zoo.Rate"}}
    assert op["callbacks"] == {"onEvent": {"$ref": "#/components/callbacks/zoo.Event"}}
    # x- extensions: refs rewritten, a default response inside one too, example data not.
    assert op["x-codeSamples"] == [{"lang": "shell", "source": {"$ref": "#/x-zoo.samples/curl"}}]
    assert op["x-some-ext"] == {
        "$ref": "#/components/schemas/zoo.Pet",
        "responses": {"default": {"$ref": "#/components/responses/zoo.Error"}},
        "example": {"$ref": "#/components/schemas/NotRenamed"},
    }
    assert op["x-integration"] == {"$ref": "#/components/x-integrations/zoo.lambda"}
    assert op["x-limits"] == {"$ref": "#/components/x-zoo.limits/0"}
    assert op["x-generated"] == {"$ref": "#/paths/x-zoo.generated/shared"}
    # Sections a ref points into are kept under their namespaced names; the others are dropped as before.
    assert part["paths"]["x-zoo.generated"] == {"shared": {"description": "referenced from an operation"}}
    assert "x-unused" not in part["paths"] and "x-zoo.unused" not in part["paths"]
    assert part["x-zoo.samples"] == {"curl": "curl https://example.com/pets/1"}
    assert part["components"]["x-integrations"] == {
        "zoo.lambda": {"type": "aws_proxy", "next": {"$ref": "#/components/x-integrations/zoo.lambda"}}
    }
    assert part["components"]["x-zoo.limits"] == [{"rate": 10, "schema": {"$ref": "#/components/schemas/zoo.Base"}}]
    assert part["x-tagGroups"] == [{"name": "zoo", "tags": ["zoo: pets", "zoo"]}]  # the service's own: replaced
    assert part["tags"][0]["x-display"] == {"$ref": "#/components/schemas/zoo.Pet"}

    pet = part["components"]["schemas"]["zoo.Pet"]
    assert pet["discriminator"]["mapping"] == {
        "cat": "#/components/schemas/zoo.Cat",
        "Dog": "#/components/schemas/zoo.Dog",  # implicit, made explicit before the rename
    }
    assert pet["properties"]["default"] == {"$ref": "#/components/schemas/zoo.Dog"}
    assert pet["properties"]["friend"] == {"default": {"$ref": "#/components/schemas/NotRenamed"}}
    assert pet["properties"]["kind"] == {
        "enum": [{"$ref": "#/components/schemas/NotRenamed"}],
        "const": {"$ref": "#/x"},
    }
    assert pet["properties"]["tags"]["examples"] == [{"$ref": "#/components/schemas/NotRenamed"}]
    assert pet["x-enum-reference"] == {"$ref": "#/components/schemas/zoo.Dog"}
    assert part["components"]["examples"]["zoo.One"] == {"value": {"$ref": "#/components/schemas/NotRenamed"}}
    assert part["components"]["links"]["zoo.Self"] == {"operationRef": "#/paths/~1api~1zoo~1v1~1pets~1%7Bid%7D/get"}
    callback = part["components"]["callbacks"]["zoo.Event"]["{$request.body#/url}"]["post"]
    assert callback["responses"]["200"] == {"$ref": "#/components/responses/zoo.Error"}
    assert part["paths"]["/api/zoo/v1/shared"] == {"$ref": "#/components/pathItems/zoo.Shared"}
    assert part["webhooks"]["zoo.petAdded"]["post"]["requestBody"] == {"$ref": "#/components/requestBodies/zoo.PetBody"}

    # Two services with the same sections merge side by side.
    other = fragment(ServiceSpec("farm", "v2", everything()))
    doc = combine([part, other], title="P", version="1").document
    assert dangling_refs(doc) == []
    assert list(doc["components"]["x-integrations"]) == ["zoo.lambda", "farm.lambda"]
    assert [key for key in doc["components"] if key.startswith("x-")] == [
        "x-integrations",
        "x-zoo.limits",
        "x-farm.limits",
    ]
    assert [key for key in doc if key.startswith("x-")] == ["x-tagGroups", "x-zoo.samples", "x-farm.samples"]
    assert [key for key in doc["paths"] if key.startswith("x-")] == ["x-zoo.generated", "x-farm.generated"]


def test_deprecated_aliases_and_swagger2_keep_references_whole() -> None:
    swagger = {
        "swagger": "2.0",
        "info": INFO,
        "paths": {
            "/a": {
                "get": {
                    "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/A"}}},
                    "x-ext": {"$ref": "#/definitions/A"},
                }
            }
        },
        "definitions": {"A": {"type": "object", "x-self": {"$ref": "#/definitions/A"}}},
    }
    part = fragment(ServiceSpec("old", "v1", swagger, deprecated_aliases=True))
    assert dangling_refs(part) == []
    assert part["paths"]["/api/old/v1/a"]["get"]["x-ext"] == {"$ref": "#/components/schemas/old.A"}
    assert part["paths"]["/api/v1/old/a"]["get"]["x-ext"] == {"$ref": "#/components/schemas/old.A"}
    assert part["components"]["schemas"]["old.A"]["x-self"] == {"$ref": "#/components/schemas/old.A"}


# --------------------------------------------------------------------------- the check


def test_resolves_follows_json_pointer_rules() -> None:
    doc = {"a/b": {"c~d": [{"e f": 1}]}, "": {"%": True}, "list": [0, 1]}
    assert resolves(doc, "#")
    assert resolves(doc, "#/a~1b/c~0d/0/e f")
    assert resolves(doc, "#/a~1b/c~0d/0/e%20f")  # percent-decoded first
    assert resolves(doc, "#//%25")
    assert resolves(doc, "#/list/1")
    assert not resolves(doc, "#/list/2")
    assert not resolves(doc, "#/list/01")  # no leading zeros
    assert not resolves(doc, "#/list/-")
    assert not resolves(doc, "#/a/b")
    assert not resolves(doc, "#/list/1/x")


def test_dangling_refs_paths_and_what_is_not_checked() -> None:
    doc = {
        "openapi": "3.1.0",
        "paths": {"/a": {"get": {"responses": {"default": {"$ref": "#/components/responses/Missing"}}}}},
        "components": {
            "schemas": {
                "A": {
                    "properties": {"example": {"$ref": "#/components/schemas/Gone"}},
                    "example": {"$ref": "#/nowhere"},  # data
                    "default": {"$ref": "#/nowhere"},
                    "discriminator": {"propertyName": "k", "mapping": {"b": "#/components/schemas/B", "c": "C"}},
                    "x-other": {"$ref": "other.yaml#/A"},  # another document: not checked here
                    "x-anchor": {"$ref": "#anchor"},
                }
            }
        },
    }
    assert dangling_refs(doc) == [
        ("$.paths['/a'].get.responses.default['$ref']", "#/components/responses/Missing"),
        ("$.components.schemas.A.properties.example['$ref']", "#/components/schemas/Gone"),
        ("$.components.schemas.A.discriminator.mapping.b", "#/components/schemas/B"),
    ]
    with pytest.raises(DanglingRefError) as raised:
        check_refs(doc)
    assert str(raised.value) == (
        "merged document: 3 $ref(s) do not resolve, the first is '#/components/responses/Missing' "
        "at $.paths['/a'].get.responses.default['$ref']"
    )
    assert isinstance(raised.value, InvalidSpecError) and isinstance(raised.value, DocgenError)
    assert raised.value.exit_code == 3


def test_check_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """One walk; each distinct ref resolved once; ten times the document takes about ten times as long."""
    import time

    import docgen.merge_refs as merge_refs

    def document(size: int) -> dict[str, Any]:
        schemas = {f"S{i}": {"properties": {"next": {"$ref": f"#/components/schemas/S{i + 1}"}}} for i in range(size)}
        schemas[f"S{size}"] = {"type": "string", "x-same": [{"$ref": "#/components/schemas/S0"}] * size}
        return {"openapi": "3.1.0", "components": {"schemas": schemas}}

    calls: list[str] = []
    real_resolves = merge_refs.resolves
    monkeypatch.setattr(merge_refs, "resolves", lambda doc, ref: calls.append(ref) or real_resolves(doc, ref))
    assert dangling_refs(document(1_000)) == []
    assert len(calls) == len(set(calls)) == 1_001  # 2,000 refs, 1,001 distinct ones (S1...S1000, S0)
    monkeypatch.undo()

    def timed(size: int) -> float:
        doc = document(size)
        started = time.perf_counter()
        assert dangling_refs(doc) == []
        return time.perf_counter() - started

    timed(20_000)  # warm up
    small, large = timed(20_000), timed(160_000)
    assert large < small * 8 * 3, (small, large)  # linear: about 8 times; quadratic: 64 times


def test_a_merge_that_would_dangle_fails_loudly() -> None:
    # A service whose own x- extension points at nothing: its fragment is refused (the portal quarantines it).
    broken = {
        "openapi": "3.0.3",
        "info": INFO,
        "paths": {"/a": {"get": {"responses": {"200": OK}, "x-codeSamples": {"$ref": "#/components/x-samples/a"}}}},
    }
    with pytest.raises(DanglingRefError) as raised:
        fragment(ServiceSpec("broken", "v1", broken))
    message = str(raised.value)
    assert message == (
        "service 'broken': 1 $ref(s) do not resolve, the first is '#/components/x-samples/a' "
        "at $.paths['/api/broken/v1/a'].get['x-codeSamples']['$ref']"
    )
    assert "\n" not in message
    # Fragments that dangle once combined (one made by hand): the merged document is refused.
    good = fragment(ServiceSpec("good", "v1", {"openapi": "3.1.0", "info": INFO, "paths": {"/b": {"get": {}}}}))
    good["paths"]["/api/good/v1/b"]["get"]["x-ext"] = [{"$ref": "#/components/schemas/good.Missing"}] * 2
    with pytest.raises(DanglingRefError, match=r"^merged document: 2 \$ref\(s\) do not resolve, the first is "):
        combine([good], title="P", version="1")


# --------------------------------------------------------------------------- the written file


def test_merged_file_written_world_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``auto-docs merge`` writes the merged spec with autocore.files.write_atomic: 0644 when new, an existing
    file's mode kept (never the 0600 of a bare temporary file)."""
    from docgen.cli import main

    root = Path(__file__).resolve().parents[2]
    portal = tmp_path / "portal"
    shutil.copytree(root / "docgen" / "toolkit-docs", portal)
    shutil.copyfile(root / "deployer" / "state" / "contract.yaml", portal / "contract.yaml")
    manifest = portal / "services.yml"
    manifest.write_text(manifest.read_text().replace("../../deployer/state/contract.yaml", "contract.yaml"))
    out = tmp_path / "merged.json"
    argv = ["merge", "--manifest", str(manifest), "--out", str(out), "--cache", str(tmp_path / "cache")]
    assert main(argv) == 0, capsys.readouterr().err
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert dangling_refs(load_spec(out)[0]) == []
    out.chmod(0o640)
    assert main(argv) == 0, capsys.readouterr().err
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


# --------------------------------------------------------------------------- the whole real-world corpus


# The schemes the stackql split files of the Okta API name without declaring them (the whole Okta spec declares
# them; a 3.x Security Requirement MUST name a declared scheme, so the files alone are quarantined, rightly).
OKTA_SCHEMES = {
    "apiToken": {"type": "apiKey", "in": "header", "name": "Authorization"},
    "oauth2": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/oauth2/v1/token", "scopes": {}}}},
}


def _with_declared_schemes(path: Path, tmp_path: Path) -> Path:
    """A copy of a stackql Okta split file with the security schemes it names declared."""
    document, _ = load_spec(path)
    document.setdefault("components", {})["securitySchemes"] = OKTA_SCHEMES
    copied = tmp_path / "okta" / path.with_suffix(".json").name
    copied.parent.mkdir(exist_ok=True)
    copied.write_text(json.dumps(document))
    return copied


@pytest.mark.system  # reads the real-world corpus that `make corpus` fetches from npm
def test_whole_realworld_corpus_merged_at_once_has_no_dangling_ref(tmp_path: Path) -> None:
    from docgen.manifest import Manifest, ServiceEntry
    from docgen.portal import gather
    from tests.docgen.realworld import spec_paths
    from tests.support import unavailable

    try:
        corpus = spec_paths()
    except RuntimeError as exc:
        unavailable(f"the real-world corpus: {exc}")
    paths = [*corpus, *(_with_declared_schemes(p, tmp_path) for p in sorted(REAL.iterdir()) if p.suffix == ".yaml")]
    paths += sorted(p for p in REAL.iterdir() if p.suffix == ".json")
    entries = tuple(ServiceEntry(f"s{index:02d}", "v1", path.stem, None, str(path)) for index, path in enumerate(paths))
    portal = gather(Manifest("Real world", "", None, "/", (), entries, "test"), cache_dir=tmp_path / "cache", jobs=2)
    published = {r.entry.title for r in portal.services if r.status == "published"}
    assert {"okta-directories", "okta-threats", "okta-first_party_app_settings", "bungie.net"} <= published
    merged = portal.merged
    assert dangling_refs(merged) == []
    # bungie.net's schemas hold refs in x-enum-reference / x-mapped-definition: namespaced like the rest.
    bungie = next(r.entry.name for r in portal.services if r.entry.title == "bungie.net")
    extension_refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("x-enum-reference", "x-mapped-definition"):
                    extension_refs.extend(site.holder[site.key] for site in ref_sites(value))
                else:
                    collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect({k: v for k, v in merged["components"]["schemas"].items() if k.startswith(f"{bungie}.")})
    assert len(extension_refs) > 100
    assert all(ref.startswith(f"#/components/schemas/{bungie}.") for ref in extension_refs)
    assert [key for key in merged["components"] if key.startswith("x-")] == ["x-stackQL-resources"]
