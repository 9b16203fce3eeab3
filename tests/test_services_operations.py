"""An operator's commands against a running deployment act on the services, never on a client.

One deployment for the module: ``confide hub ingest --max-shrink`` reaches the hub's service
as an argument of the call; setting an attribute on a party's client is refused with a clear
error (it would change nothing at the service); ``confide relay status`` and ``relay run``
show and drain every party's outbox as its service reports it; ``confide hub erasures`` reads
the hub service's register.
"""

from __future__ import annotations

import json

import pytest
from factories import small_extract
from services_world import deployed
from submit_helpers import confide, write_extract

from confide.common import exit_codes
from confide.composition import RELAYING, compose
from confide.services.rpc import NotServed, RemoteParty
from confide.services.signing import Signer, party_key

GP = "B86002"


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with deployed(tmp_path_factory.mktemp("operations")) as found:
        yield found


def test_max_shrink_travels_with_the_ingest_call_to_the_hub_service(running):
    home, root = running["home"], str(running["root"])
    with compose(home) as parties:
        first = write_extract(parties, small_extract(source=GP, patients=40, seed=1))
        smaller = write_extract(parties, small_extract(source=GP, patients=25, seed=1))
    done = confide("hub", "ingest", str(first), "--home", root, "--json")
    assert done.returncode == 0, done.stderr
    refused = confide("hub", "ingest", str(smaller), "--home", root, "--json")
    assert refused.returncode == exit_codes.PARTLY_DONE, refused.stderr
    assert "would shrink its record" in json.loads(refused.stdout)["rejected"][0]["error"]
    bad = confide("hub", "ingest", str(smaller), "--home", root, "--max-shrink", "2")
    assert bad.returncode == exit_codes.BAD_REQUEST and "between 0 and 1" in bad.stderr
    allowed = confide("hub", "ingest", str(smaller), "--home", root, "--max-shrink", "0.5")
    assert allowed.returncode == 0, allowed.stderr


def test_setting_or_reading_what_a_service_does_not_offer_is_refused(running, tmp_path):
    with compose(running["home"]) as parties:
        hub = parties.hub
        assert isinstance(hub, RemoteParty)
        for name, value in (("max_shrink", 1.0), ("listeners", [])):
            with pytest.raises(NotServed, match="would change nothing there"):
                setattr(hub, name, value)
            assert name not in hub.__dict__
        with pytest.raises(NotServed, match="offers no 'records'"):
            _ = hub.records
        with pytest.raises(NotServed):
            parties.ledger.witnessing = None
        assert not hasattr(parties.pseudonymiser, "linkage")  # still an AttributeError
    alone = RemoteParty("hub", "http://127.0.0.1:9", Signer("operator", party_key(tmp_path)))
    with pytest.raises(NotServed):
        alone.max_shrink = 0.0


def test_relay_status_and_run_ask_every_party_service(running):
    home, root = running["home"], str(running["root"])
    done = confide(
        "choices", "set", "--nhs-number", "9990000018", "--channel", "online",
        "--no-research", "--home", root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with compose(home) as parties:
        assert parties.outboxes == []  # none of this process: every outbox is a service's
    status = confide("relay", "status", "--home", root, "--json")
    assert status.returncode == 0, status.stderr
    found = json.loads(status.stdout)
    assert set(found) == set(RELAYING)
    assert found["choices"]["delivered"] + found["choices"]["pending"] >= 1
    assert all({"next_due_in", "waiting"} <= set(state) for state in found.values())
    drained = confide("relay", "run", "--home", root, "--timeout", "30", "--json")
    assert drained.returncode == 0, drained.stderr
    assert json.loads(drained.stdout)["pending"] == 0
    after = json.loads(confide("relay", "status", "--home", root, "--json").stdout)
    assert all(state["pending"] == 0 for state in after.values())
    assert after["choices"]["delivered"] >= 1


def test_hub_erasures_read_the_hub_services_register(running):
    home, root = running["home"], str(running["root"])
    extract = small_extract(source="B86003", patients=6, seed=9)
    with compose(home) as parties:
        folder = write_extract(parties, extract)
    assert confide("hub", "ingest", str(folder), "--home", root).returncode == 0
    person = extract.table("patients").to_pylist()[0]["nhs_number"]
    before = json.loads(confide("hub", "erasures", "--home", root, "--json").stdout)
    done = confide(
        "choices", "set", "--nhs-number", person, "--channel", "online", "--share-nothing",
        "--home", root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    after = confide("hub", "erasures", "--home", root, "--json")
    assert after.returncode == 0, after.stderr
    shown = json.loads(after.stdout)
    assert shown["erased_people"] == before["erased_people"] + 1
    assert shown["pending_erasures"] == 0 and shown["pending"] == []
    status = json.loads(confide("hub", "status", "--home", root, "--json").stdout)
    assert status["erasures"]["erased_people"] == shown["erased_people"]


def test_linkage_model_and_cosign_go_through_their_services(running):
    root = str(running["root"])
    model = confide("pseudonymiser", "linkage", "model", "--home", root, "--json")
    assert model.returncode == 0, model.stderr
    assert "trained" in json.loads(model.stdout)
    cosign = confide("ledger", "cosign", "--home", root, "--json")
    assert cosign.returncode == 0, cosign.stderr
    shown = json.loads(cosign.stdout)
    with compose(running["home"]) as parties:
        assert shown == {"size": parties.ledger.head().size, "witnesses": {}}


def _page_paths() -> list[str]:
    """Every page and download of the web app that takes no part of its address."""
    import importlib
    import pkgutil

    import confide.web.pages as pages

    paths: set[str] = set()
    for found in pkgutil.iter_modules(pages.__path__):
        router = getattr(importlib.import_module(f"{pages.__name__}.{found.name}"), "router", None)
        for route in getattr(router, "routes", []):
            if "GET" in (getattr(route, "methods", None) or ()) and "{" not in route.path:
                paths.add(route.path)
    return sorted(paths)


def test_every_page_answers_through_the_services(running):
    """The web party reads the others only through their services: no page may reach for
    what a client does not carry (the ledger's folder, the registry's key file)."""
    import httpx

    from confide.services import deployment

    found = deployment.running(running["home"])
    assert found is not None
    web = found["parties"]["web"]["url"]
    paths = _page_paths()
    assert {"/transparency", "/statistics", "/register"} <= set(paths)
    answers = {path: httpx.get(web + path, timeout=60).status_code for path in paths}
    broken = {path: code for path, code in answers.items() if code >= 422 or code == 400}
    assert not broken, broken
