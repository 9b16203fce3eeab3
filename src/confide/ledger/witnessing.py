"""The log's side of witnessing: ask each witness to cosign the latest checkpoint, keep the
cosignatures, serve them with it (C2SP ``tlog-witness`` and ``tlog-cosignature``).

The witnesses a log asks are listed in ``witnesses.json`` in the ledger's folder::

    {"witnesses": [{"key": "<witness verifier key>", "url": "https://witness.example/w1"},
                   {"key": "<witness verifier key>", "folder": "witnesses/witness-1"}]}

A ``url`` is a witness served over HTTP; a ``folder`` (inside the home) is a witness that the
embedded deployment runs in-process, through the same request and reply. After each append
:meth:`Witnessing.cosign_latest` sends every witness the latest checkpoint with a consistency
proof from the size it last cosigned, checks the cosignature that comes back against the
witness's key and keeps it. Nothing here can fail an append: the entries are committed and
signed by then, and a witness that is down is sent a later checkpoint with a longer proof. A
witness that has seen a different tree of this log (a fork, a rollback, a split view) is an
alarm: it is logged as an error and reported, and the witness never cosigns again until the
log is back on the tree it saw.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

import httpx

from confide.common.errors import ConfideError, InvalidInput
from confide.common.secrets import write_secret
from confide.ledger import checkpoint as cp
from confide.ledger.add_checkpoint import AddCheckpoint, WitnessReply
from confide.ledger.cosignature import CosignatureVerifier

if TYPE_CHECKING:
    from confide.ledger.log import Ledger

CONFIG_FILE = "witnesses.json"
log = logging.getLogger(__name__)


class WitnessTransport(Protocol):
    """How the log reaches one witness's ``add-checkpoint``."""

    def add_checkpoint(self, request: bytes) -> WitnessReply: ...

    def close(self) -> None: ...


class HttpWitness:
    """A witness served over HTTP (``POST <url>/add-checkpoint``)."""

    def __init__(self, url: str, client: httpx.Client | None = None, timeout: float = 10) -> None:
        self.url = url.rstrip("/")
        self.client = client or httpx.Client(timeout=timeout)

    def add_checkpoint(self, request: bytes) -> WitnessReply:
        resp = self.client.post(
            f"{self.url}/add-checkpoint",
            content=request,
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        return WitnessReply(resp.status_code, resp.text, resp.headers.get("content-type", ""))

    def close(self) -> None:
        self.client.close()


# --- the list of witnesses ----------------------------------------------------------------


@dataclass(frozen=True)
class WitnessSpec:
    """One witness the log asks: its key, and where it is (a URL, or a folder in the home)."""

    key: str
    url: str | None = None
    folder: str | None = None

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier.parse(self.key)

    @property
    def where(self) -> str:
        return self.url or f"folder {self.folder}"

    def check(self) -> WitnessSpec:
        """This spec if its key reads as a witness key and it has exactly one place."""
        try:
            self.verifier  # noqa: B018 - parsing is the check
        except cp.CheckpointError as exc:
            raise InvalidInput(f"That is not a witness's verifier key: {exc.message}") from None
        if (self.url is None) == (self.folder is None):
            raise InvalidInput("A witness is reached by a URL or by a folder, exactly one.")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise InvalidInput("A witness's URL starts with https:// (or http:// on loopback).")
        if self.folder is not None:
            path = PurePosixPath(self.folder)
            if path.is_absolute() or ".." in path.parts or not path.parts:
                raise InvalidInput("A witness's folder is a relative path inside the home.")
        return self

    def as_dict(self) -> dict[str, str]:
        out = {"key": self.key}
        if self.url is not None:
            out["url"] = self.url
        if self.folder is not None:
            out["folder"] = self.folder
        return out


def load_witnesses(folder: Path | None) -> list[WitnessSpec]:
    """The witnesses listed in the ledger's folder (none when there is no list)."""
    path = None if folder is None else folder / CONFIG_FILE
    if path is None or not path.exists():
        return []
    try:
        doc = json.loads(path.read_text())
        specs = [WitnessSpec(w["key"], w.get("url"), w.get("folder")) for w in doc["witnesses"]]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(
            f"The ledger's {CONFIG_FILE} cannot be read.",
            hint="Fix it by hand, or remove it and add the witnesses again.",
        ) from None
    return [s.check() for s in specs]


def save_witnesses(folder: Path, specs: Sequence[WitnessSpec]) -> None:
    doc = {"witnesses": [s.as_dict() for s in specs]}
    write_secret(folder / CONFIG_FILE, (json.dumps(doc, indent=1) + "\n").encode())


def add_witness(folder: Path, spec: WitnessSpec) -> list[WitnessSpec]:
    """List a witness (replacing any entry with the same name); the new list."""
    spec = spec.check()
    name = spec.verifier.name
    specs = [s for s in load_witnesses(folder) if s.verifier.name != name] + [spec]
    save_witnesses(folder, specs)
    return specs


def remove_witness(folder: Path, name: str) -> list[WitnessSpec]:
    specs = load_witnesses(folder)
    kept = [s for s in specs if s.verifier.name != name]
    if len(kept) == len(specs):
        raise InvalidInput(f"The ledger does not ask a witness called {name}.")
    save_witnesses(folder, kept)
    return kept


# --- cosigning ------------------------------------------------------------------------------


@dataclass
class WitnessLink:
    """A witness's key and the way to reach it."""

    verifier: CosignatureVerifier
    transport: WitnessTransport
    where: str


class WitnessRefused(Exception):
    """A witness would not cosign (its reason is the message)."""


class Witnessing:
    """Gets the log's latest checkpoint cosigned by every witness it lists."""

    def __init__(self, ledger: Ledger, links: Sequence[WitnessLink]) -> None:
        self.ledger = ledger
        self.links = list(links)
        self._lock = threading.Lock()  # one round at a time; each round sends the latest
        self._cosigned: dict[str, int] = {}  # witness name → size it last cosigned, as seen

    @classmethod
    def configured(
        cls,
        ledger: Ledger,
        home_root: Path,
        local: Callable[[Path], WitnessTransport] | None = None,
    ) -> Witnessing | None:
        """The witnesses listed in the ledger's folder: over HTTP, or in-process through
        ``local`` for those with a folder; None when none is listed."""
        links = []
        for spec in load_witnesses(ledger.folder):
            if spec.url is not None:
                links.append(WitnessLink(spec.verifier, HttpWitness(spec.url), spec.where))
            elif local is not None and spec.folder is not None:
                try:
                    transport = local(home_root / spec.folder)
                except ConfideError as exc:  # the log goes on; that witness is missed
                    log.error("Witness %s cannot be opened: %s", spec.verifier.name, exc.message)
                    continue
                links.append(WitnessLink(spec.verifier, transport, spec.where))
        return cls(ledger, links) if links else None

    def close(self) -> None:
        for link in self.links:
            link.transport.close()

    def cosign_latest(self) -> dict[str, str]:
        """Ask every witness to cosign the latest checkpoint: witness name → what happened."""
        with self._lock:
            return {link.verifier.name: self._cosign(link) for link in self.links}

    def _cosign(self, link: WitnessLink) -> str:
        try:
            self._submit(link)
        except WitnessRefused as exc:
            return str(exc)
        except (httpx.HTTPError, OSError) as exc:
            log.warning("Witness %s could not be reached: %s", link.verifier.name, exc)
            return f"unreachable ({type(exc).__name__})"
        except Exception:  # the entries are committed and signed: a witness never undoes that
            log.exception("Asking witness %s to cosign failed", link.verifier.name)
            return "failed (see the log)"
        return "cosigned"

    def _submit(self, link: WitnessLink) -> None:
        store = self.ledger.store
        v = link.verifier
        if v.name not in self._cosigned:
            self._cosigned[v.name] = store.cosigned_size(v.name, v.key_id)
        old = self._cosigned[v.name]  # a guess: a 409 tells the witness's real size
        for _ in range(3):
            latest = store.latest_checkpoint()
            if latest is None:
                raise WitnessRefused("nothing to cosign yet")
            if old > latest.size:
                raise self._alarm(link, f"it has cosigned {old} entries, the log has {latest.size}")
            proof = self.ledger.consistency_proof(old, latest.size) if old else []
            request = AddCheckpoint(old, tuple(proof), latest.note).encode()
            reply = link.transport.add_checkpoint(request)
            if reply.status == 200:
                self._keep(link, latest.note, latest.size, latest.root, reply.body)
                self._cosigned[v.name] = latest.size
                return
            theirs = reply.size
            if theirs is None:
                raise WitnessRefused(f"refused ({reply.status}: {reply.body.strip()[:200]})")
            if theirs == old:  # our old size was right: it holds another tree of this size
                raise self._alarm(link, f"it holds a different tree of {old} entries")
            old = theirs  # it had cosigned another size: prove consistency from there
        raise WitnessRefused("the log kept growing while the witness was asked; next time")

    def _keep(self, link: WitnessLink, note: str, size: int, root: bytes, body: str) -> None:
        try:
            found = link.verifier.find(note + body)
        except cp.CheckpointError as exc:
            raise WitnessRefused(f"answered with a bad cosignature: {exc.message}") from None
        if found is None:
            raise WitnessRefused("answered without a cosignature of its key")
        v = link.verifier
        self.ledger.store.save_cosignature(
            size, root, v.name, v.key_id, found.timestamp, found.line
        )

    @staticmethod
    def _alarm(link: WitnessLink, what: str) -> WitnessRefused:
        message = (
            f"ALARM: witness {link.verifier.name} refuses this log's checkpoint because {what}: "
            "someone has shown it another version of this log (a fork, a rollback or a "
            "split view)"
        )
        log.error(message)
        return WitnessRefused(message)
