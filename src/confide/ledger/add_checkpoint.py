"""The request and reply of a witness's ``add-checkpoint`` call (C2SP ``tlog-witness``).

The request body is an old-size line, the consistency proof from that size (one base64 hash
per line, at most 63), a blank line, then the checkpoint note::

    old 20
    PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
    jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=

    confide.local/ledger/3f9a0c12
    24
    ...

A witness answers 200 with its cosignature lines, or 400 (malformed, or an old size above the
checkpoint's), 403 (no signature it trusts), 404 (an origin it does not know), 409 (the old size
is not the size it last cosigned, or the same size with another root: the body is its size and
the content type ``text/x.tlog.size``) or 422 (the consistency proof does not verify). The log
builds requests with :meth:`AddCheckpoint.encode`; witnesses read them with
:meth:`AddCheckpoint.parse`, so both sides share one reading of the format.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

MAX_PROOF = 63
MAX_BODY = 64 * 1024  # a proof of 63 hashes and a note with many cosignatures fit easily
SIZE_TYPE = "text/x.tlog.size"
TEXT_TYPE = "text/plain; charset=utf-8"
_OLD = re.compile(r"old (0|[1-9][0-9]{0,18})")


class RequestMalformed(ValueError):
    """An add-checkpoint body that does not follow the format."""


@dataclass(frozen=True)
class AddCheckpoint:
    """A checkpoint offered to a witness, with the proof that it extends tree ``old``."""

    old: int
    proof: tuple[bytes, ...]
    note: str

    def encode(self) -> bytes:
        proof = "".join(base64.b64encode(h).decode() + "\n" for h in self.proof)
        return f"old {self.old}\n{proof}\n{self.note}".encode()

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpoint:
        if len(body) > MAX_BODY:
            raise RequestMalformed("The request is larger than any add-checkpoint request.")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestMalformed("The request is not UTF-8 text.") from None
        head, sep, note = text.partition("\n\n")
        if not sep or not note:
            raise RequestMalformed("The request needs an old size line, a blank line, a note.")
        lines = head.split("\n")
        old = _OLD.fullmatch(lines[0])
        if old is None:
            raise RequestMalformed("The first line must be 'old <size>' in plain decimal.")
        if len(lines) - 1 > MAX_PROOF:
            raise RequestMalformed(f"A consistency proof has at most {MAX_PROOF} lines.")
        return cls(int(old.group(1)), tuple(_hash(line) for line in lines[1:]), note)


def _hash(line: str) -> bytes:
    try:
        raw = base64.b64decode(line, validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise RequestMalformed("Each consistency proof line must be one base64 SHA-256 hash.")
    return raw


@dataclass(frozen=True)
class WitnessReply:
    """A witness's answer: its HTTP status, body text and content type."""

    status: int
    body: str
    content_type: str = TEXT_TYPE

    @property
    def size(self) -> int | None:
        """The witness's latest cosigned size, from a 409 answer (None otherwise)."""
        if self.status != 409 or not self.content_type.startswith(SIZE_TYPE):
            return None
        text = self.body.strip()
        return int(text) if text.isdigit() else None
