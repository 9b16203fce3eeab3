"""Sealing identifiers to the pseudonymiser: libsodium sealed boxes over whole batches.

A sealed box (X25519 + XSalsa20-Poly1305, anonymous sender) costs one public-key operation per
box, so the practice seals a batch of tens of thousands of identity rows at once rather than
one row at a time. Only the holder of the private key (the pseudonymiser) can open a box; the
hub carries the boxes without being able to read them.
"""

from __future__ import annotations

import io

import pyarrow as pa
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from confide.common.errors import SubmissionRejected

# Identity rows: the only place an NHS number, date of birth or postcode travels after the
# practice. ``type1`` carries a type 1 objection ("dissent"/"withdrawn") so the choices
# registry hears of it; objectors' rows carry no clinical data.
IDENTITY_SCHEMA = pa.schema(
    [
        ("ref", pa.int32()),
        ("nhs_number", pa.string()),
        ("birth_date", pa.string()),
        ("postcode", pa.string()),
        ("sex", pa.string()),
        ("type1", pa.string()),
        ("type1_date", pa.date32()),
    ]
)


def seal_table(table: pa.Table, public_key: bytes) -> bytes:
    """Serialise an Arrow table (zstd-compressed IPC) and seal it to ``public_key``."""
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return SealedBox(PublicKey(public_key)).encrypt(sink.getvalue())


def open_table(blob: bytes, private_key: bytes) -> pa.Table:
    """Open a sealed batch; a box that fails authentication rejects the submission."""
    try:
        plain = SealedBox(PrivateKey(private_key)).decrypt(blob)
    except CryptoError:
        raise SubmissionRejected(
            "A sealed identity batch could not be opened: it was damaged, or sealed to a "
            "different pseudonymiser key.",
            hint="Re-run the extract with the current pseudonymiser public key.",
        ) from None
    with pa.ipc.open_stream(plain) as reader:
        return reader.read_all()
