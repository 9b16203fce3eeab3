"""The witness's cosigning key and name, made in its folder on first use and never changed.

The key ID in every cosignature is computed from the name and the key, so a witness keeps both
for life; a new name or key is a new witness that auditors must be told about.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from confide.common import settings
from confide.common.errors import InvalidInput
from confide.common.secrets import load_or_create
from confide.ledger import checkpoint as cp
from confide.ledger.cosignature import CosignerKey

KEY_FILE = "cosigner.key"
NAME_FILE = "name.txt"


def load_cosigner(folder: Path, name: str | None = None) -> CosignerKey:
    """The witness's key and name; ``name`` (else ``$CONFIDE_WITNESS_NAME``, else a new unique
    one) is used only the first time."""
    if name is not None:
        cp.check_name(name)
    path = folder / NAME_FILE
    if path.exists():
        kept = path.read_text().strip()
        if name is not None and name != kept:
            raise InvalidInput(
                f"This witness is called {kept}; a witness's name never changes.",
                hint="Use another folder for a witness with another name.",
            )
    else:
        chosen = name or settings.value(settings.WITNESS_NAME.name)
        chosen = chosen or f"confide.local/witness/{secrets.token_hex(4)}"
        cp.check_name(chosen)
        kept = load_or_create(path, lambda: (chosen + "\n").encode()).decode().strip()
    seed = load_or_create(folder / KEY_FILE, lambda: secrets.token_bytes(32))
    if len(seed) != 32:
        raise InvalidInput("The witness's key file is damaged (not 32 bytes).")
    return CosignerKey(kept, seed)
