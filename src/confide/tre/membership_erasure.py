"""Erasing people from the release membership files (``.contributors`` and ``.excluded``).

Those files let a person learn which releases used their data; once the person is erased, the
TRE must no longer be able to say it either. Their digest is removed from every release's files
(held for review, or released), after the deletion notices that needed it have been written.
Each file is rewritten beside itself and swapped in, so running it again after a crash finishes
the job.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from confide.usage.report import membership_digest, release_salt

_DIGEST = 32
_MEMBER_FILES = ("contributors", "excluded")


def forget(folders: Iterable[Path], pseudonyms: Iterable[str]) -> int:
    """Remove these people's digests from every membership file in ``folders``; returns how
    many digests were removed."""
    people = sorted(set(pseudonyms))
    if not people:
        return 0
    removed = 0
    for folder in folders:
        if not folder.exists():
            continue
        for salt_or_member in sorted(folder.glob("*.contributors")):
            release_id = salt_or_member.name.rsplit(".", 1)[0]
            salt_file = folder / f"{release_id}.salt"
            salt = release_salt(release_id, salt_file.read_bytes() if salt_file.exists() else None)
            if salt is None:
                continue
            marks = {membership_digest(salt, person) for person in people}
            for kind in _MEMBER_FILES:
                removed += _drop(folder / f"{release_id}.{kind}", marks)
    return removed


def _drop(path: Path, marks: set[bytes]) -> int:
    if not path.exists():
        return 0
    data = path.read_bytes()
    members = [data[i : i + _DIGEST] for i in range(0, len(data) - len(data) % _DIGEST, _DIGEST)]
    kept = [member for member in members if member not in marks]
    if len(kept) == len(members):
        return 0
    tmp = path.with_name(f".{path.name}.partial")
    with tmp.open("wb") as fh:
        fh.write(b"".join(kept))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(members) - len(kept)
