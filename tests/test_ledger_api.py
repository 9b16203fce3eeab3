"""The ledger's HTTP API, in process: what a Certificate Transparency-style client needs."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_ledger_merkle import ref_mth, ref_path, ref_proof

from confide.common.home import Home
from confide.ledger import checkpoint as cp
from confide.ledger.api import MAX_PAGE, make_router
from confide.ledger.log import Ledger

N = 1203


@pytest.fixture
def client(opstore, tmp_path: Path):
    ledger = Ledger.open(Home.at(tmp_path))
    ledger.append_raw([b"api leaf %d" % i for i in range(N)])
    app = FastAPI()
    app.include_router(make_router(ledger), prefix="/api/ledger")
    with TestClient(app) as c:
        yield c
    ledger.close()


def _all_entries(client: TestClient) -> list[bytes]:
    out: list[bytes] = []
    while len(out) < N:
        resp = client.get("/api/ledger/entries", params={"start": len(out), "end": N})
        assert resp.status_code == 200
        page = resp.json()["entries"]
        assert 0 < len(page) <= MAX_PAGE
        assert [e["index"] for e in page] == list(range(len(out), len(out) + len(page)))
        out.extend(base64.b64decode(e["leaf_input"]) for e in page)
    return out


def test_checkpoint_and_entries_rebuild_the_root_without_confide(client) -> None:
    resp = client.get("/api/ledger/checkpoint")
    assert resp.status_code == 200 and "max-age" in resp.headers["cache-control"]
    doc = resp.json()
    leaves = _all_entries(client)
    assert doc["size"] == N and doc["root"] == ref_mth(leaves).hex()
    key = client.get("/api/ledger/public-key").json()
    signed = cp.verify(doc["checkpoint"], cp.Verifier.parse(key["verifier_key"]))
    assert signed.root.hex() == doc["root"]
    assert base64.b64decode(key["public_key"]) == cp.Verifier.parse(key["verifier_key"]).public_key


def test_proofs_match_the_rfc_reference(client) -> None:
    leaves = [b"api leaf %d" % i for i in range(N)]
    for index, size in ((0, 1), (5, 6), (700, 1000), (1202, 1203), (64, 65)):
        lh = hashlib.sha256(b"\x00" + leaves[index]).hexdigest()
        resp = client.get("/api/ledger/proof/inclusion", params={"leaf_hash": lh, "size": size})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["index"] == index and body["size"] == size
        assert body["audit_path"] == [h.hex() for h in ref_path(index, leaves[:size])]
        assert resp.headers["cache-control"].endswith("immutable")
    for first, second in ((1, 2), (3, 7), (512, 1203), (1000, 1001), (7, 7)):
        resp = client.get(
            "/api/ledger/proof/consistency", params={"first": first, "second": second}
        )
        assert resp.status_code == 200
        expected = ref_proof(first, leaves[:second]) if first < second else []
        assert resp.json()["consistency"] == [h.hex() for h in expected]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/entries", {"start": 5, "end": 2}, 400),
        ("/entries", {"start": -1, "end": 2}, 400),
        ("/entries", {"start": N, "end": N + 5}, 400),
        ("/proof/inclusion", {"leaf_hash": "zz"}, 400),
        ("/proof/inclusion", {"leaf_hash": "00" * 32}, 404),
        ("/proof/inclusion", {"leaf_hash": "00" * 32, "size": N + 1}, 400),
        ("/proof/consistency", {"first": 9, "second": 3}, 400),
        ("/proof/consistency", {"first": 1, "second": N + 1}, 400),
    ],
)
def test_clear_errors(client, path: str, params: dict, status: int) -> None:
    resp = client.get(f"/api/ledger{path}", params=params)
    assert resp.status_code == status
    assert resp.json()["detail"]


def test_entries_past_the_end_are_clipped_and_not_cached_forever(client) -> None:
    resp = client.get("/api/ledger/entries", params={"start": N - 2, "end": N + 10})
    assert [e["index"] for e in resp.json()["entries"]] == [N - 2, N - 1]
    assert "immutable" not in resp.headers["cache-control"]


def test_openapi_documents_every_route_with_a_response_model(client) -> None:
    spec = client.get("/openapi.json").json()
    for route in ("checkpoint", "entries", "proof/inclusion", "proof/consistency", "public-key"):
        op = spec["paths"][f"/api/ledger/{route}"]["get"]
        assert op["summary"] and op["description"]
        assert "$ref" in op["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"400", "404"} <= set(spec["paths"]["/api/ledger/proof/inclusion"]["get"]["responses"])
