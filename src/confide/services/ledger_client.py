"""The ledger over HTTP: ``append_once`` as the in-process ledger offers it, sent signed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import orjson

from confide.services.signing import Signer


class LedgerClient:
    """Sends entries to a ledger service; raises on any refusal, so the relay retries."""

    def __init__(self, url: str, signer: Signer, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.signer = signer
        self.http = httpx.Client(timeout=timeout)

    def append_once(self, items: Iterable[tuple[str, str, dict[str, Any]]]) -> list[int]:
        body = orjson.dumps({"items": [list(item) for item in items]})
        headers = {
            "Content-Type": "application/json",
            **self.signer.headers("ledger", "POST", "/events", body),
        }
        reply = self.http.post(f"{self.url}/events", content=body, headers=headers)
        reply.raise_for_status()
        return [int(i) for i in reply.json()["indices"]]

    def close(self) -> None:
        self.http.close()
