"""The transparency page's "check it yourself" steps work when followed as written.

The test reads the URLs off the page, downloads the entries page by page exactly as the
page says, recomputes the Merkle root and compares it with the root the page shows; then,
after the log grows, it asks for the consistency proof the page describes and verifies it.
"""

from __future__ import annotations

import base64
import re
from html import unescape

import pytest
from fastapi.testclient import TestClient
from web_seed import build_home

from confide.ledger import merkle

CODE = re.compile(r"<code[^>]*>(.*?)</code>", re.DOTALL)


@pytest.fixture
def seeded(tmp_path):
    home = build_home(tmp_path / "home")
    home.ledger.append_raw([f'{{"kind":"seed","n":{i}}}'.encode() for i in range(1_500)])
    yield home
    home.close()


def _urls(page: str) -> list[str]:
    return [unescape(c).strip() for c in CODE.findall(page) if "/api/ledger/" in c]


def _root_shown(page: str) -> str:
    return re.search(r"Root hash.*?<code[^>]*>([0-9a-f]{64})</code>", page, re.DOTALL)[1]


def _follow_entries(http: TestClient, page: str, size: int) -> list[bytes]:
    """Download every entry the way the page says: its links, then the same steps onwards."""
    pages = [u for u in _urls(page) if "/entries?" in u]
    assert pages, "the page gives the entries' URL"
    first = re.search(r"start=(\d+)&end=(\d+)", pages[0])
    step = int(first[2]) - int(first[1])
    leaves: list[bytes] = []
    for start in range(0, size, step):
        url = re.sub(r"start=\d+&end=\d+", f"start={start}&end={start + step}", pages[0])
        got = http.get(url)
        assert got.status_code == 200, got.text
        leaves += [base64.b64decode(e["leaf_input"]) for e in got.json()["entries"]]
    return leaves


def test_following_the_steps_verifies_the_log(seeded) -> None:
    with TestClient(seeded.app(), base_url="https://testserver") as http:
        page = http.get("/transparency").text
        size = seeded.ledger.checkpoint().size
        assert size > 1_000 and len([u for u in _urls(page) if "/entries?" in u]) == 2
        checkpoint = http.get(next(u for u in _urls(page) if u.endswith("/checkpoint")))
        assert checkpoint.status_code == 200
        leaves = _follow_entries(http, page, size)
        assert len(leaves) == size
        root = merkle.root_from_leaves([merkle.leaf_hash(leaf) for leaf in leaves])
        assert root.hex() == _root_shown(page)

        consistency = next(u for u in _urls(page) if "/proof/consistency?" in u)
        assert f"first={size}" in consistency and "NEW_SIZE" in consistency
        seeded.ledger.append_raw([b'{"kind":"seed","later":1}'] * 3)
        later = http.get("/transparency").text
        new_size = size + 3
        proof = http.get(consistency.replace("NEW_SIZE", str(new_size)))
        assert proof.status_code == 200, proof.text
        merkle.verify_consistency(
            size,
            new_size,
            root,
            bytes.fromhex(_root_shown(later)),
            [bytes.fromhex(h) for h in proof.json()["consistency"]],
        )
