"""Where an auditor reads a log from: the public HTTP API, or a local installation's store.

Each source also names its log by *where it is* (:meth:`Source.address`): the auditor pins the
origin and key it first saw under that name, so a log that turns up with another origin or key
at the same place is caught, whatever it now calls itself.
"""

from __future__ import annotations

import base64
from typing import Any, Protocol

import httpx

from confide.common.errors import InvalidInput
from confide.ledger.log import Ledger

PAGE = 1000


class Source(Protocol):
    """Where a verifier reads a log from."""

    def address(self) -> str: ...

    def verifier_key(self) -> str: ...

    def checkpoint(self) -> str: ...

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]: ...

    def inclusion(self, leaf_hash: bytes, size: int) -> tuple[int, list[bytes]]: ...

    def consistency(self, first: int, second: int) -> list[bytes]: ...


class HttpSource:
    """A log served by Confide's ledger API (or anything speaking the same JSON)."""

    def __init__(self, client: httpx.Client, base: str = "") -> None:
        self.client = client
        self.base = base.rstrip("/")

    @classmethod
    def at(cls, url: str) -> HttpSource:
        return cls(httpx.Client(timeout=60, follow_redirects=True), url)

    def address(self) -> str:
        return f"{self.client.base_url}{self.base}".rstrip("/")

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        try:
            resp = self.client.get(f"{self.base}{path}", params=params)
        except httpx.HTTPError as exc:
            raise InvalidInput(
                f"Could not reach the ledger at {self.base or 'the given address'}: "
                f"{type(exc).__name__}.",
                hint="Check the URL (it ends in /api/ledger) and your network.",
            ) from None
        if resp.status_code != 200:
            detail = (
                resp.json().get("detail", "")
                if resp.headers.get("content-type", "").startswith("application/json")
                else ""
            )
            raise InvalidInput(f"The ledger answered {resp.status_code} to {path}. {detail}")
        return resp.json()

    def verifier_key(self) -> str:
        return self._get("/public-key")["verifier_key"]

    def checkpoint(self) -> str:
        return self._get("/checkpoint")["checkpoint"]

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        while start < end:
            page = self._get("/entries", start=start, end=end)["entries"]
            if not page:
                break
            out.extend((e["index"], base64.b64decode(e["leaf_input"])) for e in page)
            start = page[-1]["index"] + 1
        return out

    def inclusion(self, leaf_hash: bytes, size: int) -> tuple[int, list[bytes]]:
        doc = self._get("/proof/inclusion", leaf_hash=leaf_hash.hex(), size=size)
        return doc["index"], [bytes.fromhex(h) for h in doc["audit_path"]]

    def consistency(self, first: int, second: int) -> list[bytes]:
        doc = self._get("/proof/consistency", first=first, second=second)
        return [bytes.fromhex(h) for h in doc["consistency"]]


class LocalSource:
    """A log read straight from a ledger's operational store (an operator's own check)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def address(self) -> str:
        folder = self.ledger.folder
        return f"home:{folder.resolve() if folder is not None else 'unknown'}"

    def verifier_key(self) -> str:
        return self.ledger.verifier.vkey

    def checkpoint(self) -> str:
        note = self.ledger.checkpoint_note()
        if note is None:
            raise InvalidInput(
                "This log has no signed checkpoint yet, so there is nothing to verify against.",
                hint="Sign one with 'confide ledger checkpoint', then verify.",
            )
        return note

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        return self.ledger.store.entries(start, end)

    def inclusion(self, leaf_hash: bytes, size: int) -> tuple[int, list[bytes]]:
        return self.ledger.inclusion_proof(leaf_hash, size)

    def consistency(self, first: int, second: int) -> list[bytes]:
        return self.ledger.consistency_proof(first, second)
