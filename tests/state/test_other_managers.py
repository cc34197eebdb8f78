"""A cluster with several Swarm managers: ``other_managers`` in the contract, the database and the answers.

The state service keeps them in order (the order the deployer tries them), leaves them out of an answer when a
cluster has none (so an environment without them reads as before), refuses what could not be a manager list,
and a database of an earlier release takes them after its migration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployer.errors import DeployerError, InvalidStateError
from deployer.state.answers import parse_environment
from deployer.state.client import StateClient
from tests.state.conftest import environment_body
from tests.state.test_events import _old_database

BLUE = ("10.213.1.2", 2376, ["10.213.1.3", "10.213.1.4"])
GREEN = ("10.213.2.2", 2376)


def test_other_managers_are_kept_in_order_and_answered(client: StateClient) -> None:
    env = client.put_environment("lab", "blue", {"blue": BLUE, "green": GREEN})
    assert env.clusters["blue"].other_managers == ("10.213.1.3", "10.213.1.4")
    assert env.clusters["blue"].manager_addresses == ("10.213.1.2", "10.213.1.3", "10.213.1.4")
    assert env.clusters["green"].other_managers == ()
    raw = client._call("GET", "/v1/environments/lab", (200,), environment="lab")[1]
    assert raw["clusters"]["blue"]["other_managers"] == ["10.213.1.3", "10.213.1.4"]
    assert "other_managers" not in raw["clusters"]["green"]  # none: the answer is the same as before

    # Replacing the addresses replaces the list (here: emptied), and the event keeps both versions.
    env = client.put_environment("lab", "blue", {"blue": ("10.213.1.2", 2376), "green": GREEN})
    assert env.clusters["blue"].other_managers == ()
    updated = client.history("lab")[0]
    assert updated["kind"] == "updated"
    assert updated["detail"]["previous_clusters"]["blue"]["other_managers"] == ["10.213.1.3", "10.213.1.4"]
    assert "other_managers" not in updated["detail"]["clusters"]["blue"]


def test_addresses_are_stored_in_canonical_form(client: StateClient) -> None:
    env = client.put_environment("lab", "blue", {"blue": ("fd00::2", 2376, ["FD00:0::3"]), "green": GREEN})
    assert env.clusters["blue"].other_managers == ("fd00::3",)


@pytest.mark.parametrize(
    ("blue", "green", "message"),
    [
        (("10.0.0.1", 2376, ["10.0.0.300"]), GREEN, "clusters.blue.other_managers[0] must be an IPv4 or IPv6 literal"),
        (("10.0.0.1", 2376, ["m2.example"]), GREEN, "clusters.blue.other_managers[0] must be an IPv4 or IPv6"),
        (("10.0.0.1", 2376, ["10.0.0.2", "10.0.0.2"]), GREEN, "other_managers[1] '10.0.0.2' is listed twice"),
        (("10.0.0.1", 2376, ["10.0.0.1"]), GREEN, "other_managers[0] '10.0.0.1' is listed twice"),
        (("10.0.0.1", 2376, [f"10.0.0.{i}" for i in range(2, 9)]), GREEN, "a list of at most 6 IP addresses"),
        (("10.0.0.1", 2376, ["10.213.2.2"]), GREEN, "manager '10.213.2.2' is in both clusters.blue and clusters"),
        (("10.0.0.1", 2376, ["fe80::1%eth0\nFORGED"]), GREEN, "other_managers[0] must be an IPv4 or IPv6 literal"),
    ],
)
def test_what_cannot_be_a_manager_list_is_refused(
    client: StateClient, blue: tuple[Any, ...], green: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(DeployerError, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        client.put_environment("lab", "blue", {"blue": blue, "green": green})
    assert "\n" not in str(caught.value)
    assert client.list_environments() == []  # nothing half-written


def test_a_list_that_is_not_a_list_is_refused(client: StateClient) -> None:
    body = {
        "live_colour": "blue",
        "clusters": {
            "blue": {"manager_address": "10.0.0.1", "docker_port": 2376, "other_managers": "10.0.0.2"},
            "green": {"manager_address": "10.0.0.3", "docker_port": 2376},
        },
    }
    with pytest.raises(DeployerError, match="clusters.blue.other_managers must be a list of at most 6"):
        client._call("PUT", "/v1/environments/lab", (200, 201), environment="lab", body=body, write=True)


def test_a_database_of_the_first_release_takes_other_managers(start_state_server: Any, tmp_path: Path) -> None:
    _old_database(tmp_path / "old.db")
    client = start_state_server(db_name="old.db").client()
    before = client.get_environment("lab")
    assert [c.other_managers for c in before.clusters.values()] == [(), ()]
    env = client.put_environment(
        "lab", "green", {"blue": ("10.213.1.2", 2376), "green": ("10.213.2.2", 2376, ["10.213.2.9"])}
    )
    assert env.clusters["green"].other_managers == ("10.213.2.9",)
    assert [s.name for s in env.live_cluster.stacks] == ["demo"]  # the migration kept the stacks


@pytest.mark.parametrize(
    ("others", "message"),
    [
        ("10.213.1.3", "clusters.blue.other_managers is not a list of at most 6 addresses"),
        (["10.213.1.3"] * 7, "clusters.blue.other_managers is not a list of at most 6 addresses"),
        (["10.213.1.3", "10.213.1.3"], "clusters.blue.other_managers repeats an address"),
        (["10.213.1.2"], "clusters.blue.other_managers repeats an address"),
        (["10.213.1.3\nFORGED"], "clusters.blue.other_managers[0] '10.213.1.3?FORGED' is not an IP address"),
        ([3], "clusters.blue.other_managers[0] 3 is not an IP address"),
    ],
)
def test_an_answer_with_a_bad_manager_list_is_refused_by_the_client(others: Any, message: str) -> None:
    body = environment_body()
    body["clusters"]["blue"]["other_managers"] = others
    with pytest.raises(InvalidStateError) as caught:
        parse_environment(body, "lab")
    assert str(caught.value).endswith(message)
    assert "\n" not in str(caught.value)
