"""Reading compose files: the services a deploy defines, and clear errors."""

import pytest

from deployer import compose
from deployer.errors import ConfigError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_union_of_services_in_first_seen_order(tmp_path) -> None:
    a = write(tmp_path, "a.yml", "services:\n  web: {image: x}\n  worker: {image: y}\n")
    b = write(tmp_path, "b.yml", "services:\n  web: {environment: {A: '1'}}\n  cron: {image: z}\n")
    loaded = compose.load([a, b])
    assert loaded.services == ("web", "worker", "cron")
    assert loaded.swarm_names("auto") == ["auto_web", "auto_worker", "auto_cron"]
    assert loaded.files[0].content.startswith("services:")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services: [\n", "is not valid YAML at line 2: fix the file"),
        ("- a\n", "is not a mapping with a 'services' key"),
        ("services:\n  - web\n", "'services' must be a mapping of service names"),
        ("version: '3.8'\n", "define no service: nothing to deploy"),
        ("services:\n  'bad name': {image: x}\n", "invalid service name 'bad name'"),
        ('services:\n  "web\\n": {image: x}\n', "invalid service name 'web\\n'"),  # $ must not end before a newline
    ],
)
def test_bad_compose_files(tmp_path, text, message) -> None:
    path = write(tmp_path, "c.yml", text)
    with pytest.raises(ConfigError) as err:
        compose.load([path])
    assert message in str(err.value)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"compose file .*nope.yml does not exist"):
        compose.load([str(tmp_path / "nope.yml")])


def test_no_file() -> None:
    with pytest.raises(ConfigError, match="pass -c FILE"):
        compose.load([])


@pytest.mark.parametrize("stack", ["", "-x", "a b", "x" * 70, "demo\n", "demo\r\n"])
def test_bad_stack_names(stack) -> None:
    with pytest.raises(ConfigError, match="invalid stack name"):
        compose.check_stack_name(stack)


def test_docs_labels_are_read_and_later_files_win(tmp_path) -> None:
    a = write(
        tmp_path,
        "a.yml",
        "services:\n  web:\n    image: x\n    deploy:\n      labels:\n"
        "        auto.docs.version: v1\n        auto.docs.spec: https://web.example/openapi.json\n"
        "        team: shop\n  worker: {image: y}\n",
    )
    b = write(
        tmp_path,
        "b.yml",
        "services:\n  web:\n    deploy:\n      labels:\n"
        "        - auto.docs.version=v2\n        - auto.docs.url=https://web.example/docs.tar.gz\n",
    )
    loaded = compose.load([a, b])
    assert loaded.docs == {
        "web": {
            "version": "v2",
            "spec_url": "https://web.example/openapi.json",
            "docs_url": "https://web.example/docs.tar.gz",
        }
    }


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("auto.docs.version: v1", "need both auto.docs.version and auto.docs.spec; add the missing one"),
        ("auto.docs.version: v1\n        auto.docs.spec: http://web/x.json", "must be an https:// URL, not"),
        ("auto.docs.version: 'v 1'\n        auto.docs.spec: https://web/x.json", "must look like v1 or 2.0"),
        ("auto.docs.version: ''", "label auto.docs.version must be a non-empty string"),
    ],
)
def test_bad_docs_labels_fail_before_deploying(tmp_path, labels, message) -> None:
    path = write(tmp_path, "c.yml", f"services:\n  web:\n    image: x\n    deploy:\n      labels:\n        {labels}\n")
    with pytest.raises(ConfigError) as err:
        compose.load([path])
    assert message in str(err.value)


def test_hostile_compose_files_are_refused_in_one_line(tmp_path) -> None:
    deep = write(tmp_path, "deep.yml", "services:\n  web: " + "[" * 300 + "]" * 300 + "\n")
    with pytest.raises(ConfigError) as err:
        compose.load([deep])
    assert str(err.value) == (
        f"compose file {deep}: nested deeper than 128 levels, over the nesting depth budget of 128: refused unread"
    )
    bomb = write(
        tmp_path,
        "bomb.yml",
        "x-a: &a [x,x,x,x,x,x,x,x,x]\n"
        + "".join(f"x-{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))
        + "services:\n  web: {image: x}\n",
    )
    with pytest.raises(ConfigError, match=r"more than 500000 nodes \(YAML aliases expanded\)"):
        compose.load([bomb])
