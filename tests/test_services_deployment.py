"""The parties as services: ``confide up`` on loopback, every party its own process.

One deployment for the module (starting six processes takes a while on a small machine): a
choice made through the command line reaches the choices service and its entry the ledger
service; an ingest through the hub service is pseudonymised by the pseudonymiser service;
share-nothing erases from the hub over the services; unsigned, replayed, forged and
not-allowed requests are refused and change nothing; a service killed with ``kill -9`` is
started again by the supervisor.
"""

from __future__ import annotations

import json
import os
import signal
import uuid

import httpx
import pytest
from factories import small_extract
from services_world import deployed, wait_for
from submit_helpers import confide, ledger_kinds, pseudonyms_in_hub, write_extract

from confide.choices.model import Channel, Choice
from confide.common.home import Home
from confide.composition import compose
from confide.services import codec, deployment
from confide.services.signing import Signer, party_key

GP = "B86001"


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """``confide up`` on a new home, until the module's tests are done."""
    with deployed(tmp_path_factory.mktemp("deployment")) as found:
        yield found


def _parties(home: Home) -> dict:
    found = deployment.running(home)
    assert found is not None
    return found["parties"]


def test_up_runs_every_party_in_its_own_process_with_its_own_key(running):
    home = running["home"]
    parties = _parties(home)
    assert set(parties) == set(deployment.SERVED)
    assert len({p["pid"] for p in parties.values()}) == len(parties)
    for party in parties.values():
        assert httpx.get(f"{party['url']}/health", timeout=5).status_code == 200
    enrolled = deployment.enrolled_folder(home)
    for party in deployment.SERVED:
        key = home.root / party / "identity.key"
        assert key.stat().st_mode & 0o077 == 0 and (home.root / party).stat().st_mode & 0o077 == 0
        assert (enrolled / f"{party}.pub").read_text().strip() == bytes(
            party_key(home.root / party).verify_key
        ).hex()
    assert not list(enrolled.glob("*.key"))  # only public keys are shared
    status = confide("services", "status", "--home", str(running["root"]), "--json")
    assert status.returncode == 0
    assert all(item["healthy"] for item in json.loads(status.stdout)["parties"])


def test_a_command_uses_the_services_and_a_choice_reaches_the_ledger_service(running):
    home = running["home"]
    with compose(home) as parties:
        assert all(parties.is_remote(p) for p in deployment.REACHABLE)
        before = ledger_kinds(parties.ledger).count("choice_changed")
    done = confide(
        "choices", "set", "--nhs-number", "9990000018", "--channel", "online",
        "--no-commercial", "--home", str(running["root"]),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with compose(home) as parties:
        assert parties.choices.current("9990000018").as_dict()["no_commercial"] is True
        assert ledger_kinds(parties.ledger).count("choice_changed") == before + 1


def test_the_ledger_checkpoint_command_signs_the_head_at_the_ledger_service(running):
    done = confide("ledger", "checkpoint", "--home", str(running["root"]), "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    with compose(running["home"]) as parties:
        assert parties.is_remote("ledger")
        assert shown["size"] == parties.ledger.head().size
        assert shown["verifier_key"] == parties.ledger.verifier_key()


def test_a_party_error_crosses_back_as_the_same_clear_error(running):
    done = confide(
        "choices", "set", "--nhs-number", "1234567890", "--channel", "online",
        "--no-research", "--home", str(running["root"]),
    )  # fmt: skip
    local = confide(
        "choices", "set", "--nhs-number", "1234567890", "--channel", "online",
        "--no-research", "--home", str(running["root"] / "elsewhere"),
    )  # fmt: skip
    assert done.returncode == local.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.replace("elsewhere", "") == local.stderr.replace("elsewhere", "")


def test_ingest_and_share_nothing_go_through_the_services(running):
    home, root = running["home"], running["root"]
    extract = small_extract(source=GP, patients=12, seed=5)
    with compose(home) as parties:
        folder = write_extract(parties, extract)  # enrolled at the hub service
    done = confide("hub", "ingest", str(folder), "--home", str(root), "--json")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["ingested"]
    assert result["status"] == "ingested"
    person = extract.table("patients").to_pylist()[0]["nhs_number"]
    with compose(home) as parties:
        [pseudonym] = parties.pseudonymiser.pseudonyms_for([person])
        assert pseudonym in pseudonyms_in_hub(root / "hub")  # keyed by the pseudonymiser
        assert "submission_ingested" in ledger_kinds(parties.ledger)
        erasures = ledger_kinds(parties.ledger).count("erasure")

    done = confide(
        "choices", "set", "--nhs-number", person, "--channel", "online", "--share-nothing",
        "--home", str(root),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert pseudonym not in pseudonyms_in_hub(root / "hub")
    with compose(home) as parties:
        assert ledger_kinds(parties.ledger).count("erasure") == erasures + 1
    again = confide("hub", "ingest", str(folder), "--home", str(root), "--json")
    assert again.returncode == 0, again.stderr
    assert pseudonym not in pseudonyms_in_hub(root / "hub")


def _call(url: str, method: str, body: bytes, headers: dict) -> httpx.Response:
    return httpx.post(f"{url}/rpc/{method}", content=body, headers=headers, timeout=10)


@pytest.mark.parametrize(
    "party,method,args,caller",
    [
        ("choices", "set", ["9990000026", {Choice.NO_RESEARCH: True}, Channel.ONLINE], "web"),
        ("pseudonymiser", "pseudonyms_for", [["9990000026"]], "hub"),
        ("hub", "erase_everywhere", [["someone"]], "choices"),
        ("access", "organisations", [], "hub"),
        ("ledger", "append_once", [[]], "choices"),
    ],
)
def test_unsigned_replayed_forged_and_not_allowed_requests_are_refused(
    running, party, method, args, caller
):
    home = running["home"]
    url = _parties(home)[party]["url"]
    with compose(home) as parties:
        size = parties.ledger.head().size
        choices_before = parties.choices.current("9990000026").as_dict()
    body = codec.dumps({"args": args, "kwargs": {}})
    path = f"/rpc/{method}"
    assert _call(url, method, body, {}).status_code == 401  # unsigned
    stranger = Signer(caller, party_key(running["root"] / "not-enrolled"))
    assert _call(url, method, body, stranger.headers(party, "POST", path, body)).status_code == 401
    signer = Signer(caller, party_key(home.party(caller)))
    headers = signer.headers(party, "POST", path, body)
    tampered = body + b" "
    assert _call(url, method, tampered, headers).status_code == 401
    # A party not allowed to call this one (the access party calls only the ledger).
    nosy = Signer("access", party_key(home.party("access")))
    if party != "ledger":
        assert _call(url, method, body, nosy.headers(party, "POST", path, body)).status_code == 403
    first = _call(url, method, body, headers)
    assert first.status_code in (200, 422)
    assert _call(url, method, body, headers).status_code == 401  # the same request again
    with compose(home) as parties:
        if party == "choices":
            assert parties.choices.current("9990000026").as_dict()["no_research"] is True
        else:
            assert parties.choices.current("9990000026").as_dict() == choices_before
            assert parties.ledger.head().size == size


def test_a_service_killed_with_kill_9_is_started_again(running):
    home = running["home"]
    old = _parties(home)["access"]
    os.kill(old["pid"], signal.SIGKILL)
    wait_for(lambda: _parties(home)["access"]["pid"] != old["pid"], timeout=60)
    wait_for(lambda: _healthy(old["url"]), timeout=120)
    with compose(home) as parties:
        assert isinstance(parties.access.organisations(), list)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_up_with_a_database_url_keeps_each_party_in_its_own_schema_and_role(tmp_path, monkeypatch):
    """Each party's store in its own schema, each service connected as its own role, with
    rights on its own schemas only: the hub's role cannot read the choices registry's."""
    from postgres_helpers import POSTGRES_URL, drop_roles, drop_schemas
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ProgrammingError

    prefix = f"t{uuid.uuid4().hex[:10]}_"
    monkeypatch.setenv("CONFIDE_DATABASE_SCHEMA_PREFIX", prefix)
    root = tmp_path / "home"
    engine = create_engine(POSTGRES_URL)
    try:
        with deployed(root, "--database-url", POSTGRES_URL) as found:
            done = confide(
                "choices", "set", "--nhs-number", "9990000018", "--channel", "online",
                "--no-research", "--home", str(root),
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            with compose(found["home"]) as parties:
                assert ledger_kinds(parties.ledger) == ["choice_changed"]
            with engine.connect() as conn:
                owners = dict(
                    conn.execute(
                        text("SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace "
                             "WHERE nspname LIKE :p"),
                        {"p": prefix + "%"},
                    ).all()
                )  # fmt: skip
                connected = set(
                    conn.execute(
                        text("SELECT DISTINCT usename FROM pg_stat_activity WHERE usename LIKE :p"),
                        {"p": prefix + "%"},
                    ).scalars()
                )
                tables = conn.execute(
                    text("SELECT schemaname, tablename FROM pg_tables "
                         "WHERE schemaname IN (:c, :h)"),
                    {"c": prefix + "choices", "h": prefix + "hub"},
                ).all()  # fmt: skip
            for party in ("choices", "hub", "access", "ledger"):
                assert owners[prefix + party] == f"{prefix}confide_{party}"
            assert {f"{prefix}confide_{p}" for p in ("choices", "hub", "ledger")} <= connected
            secret = root / "hub" / "database.password"
            assert secret.stat().st_mode & 0o077 == 0
            as_hub = create_engine(
                make_url(POSTGRES_URL).set(
                    username=f"{prefix}confide_hub", password=secret.read_text().strip()
                )
            )
            choices_tables = [t for s, t in tables if s == prefix + "choices"]
            hub_tables = [t for s, t in tables if s == prefix + "hub"]
            assert choices_tables and hub_tables
            try:
                with as_hub.connect() as conn:
                    conn.execute(text(f'SELECT count(*) FROM "{prefix}hub"."{hub_tables[0]}"'))
                for table in choices_tables:
                    with as_hub.connect() as conn, pytest.raises(ProgrammingError):
                        conn.execute(text(f'SELECT * FROM "{prefix}choices"."{table}"'))
            finally:
                as_hub.dispose()
        assert not (root / "choices" / "choices.db").exists()  # nothing on SQLite
    finally:
        engine.dispose()
        drop_schemas(prefix)
        drop_roles(prefix)
