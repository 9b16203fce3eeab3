"""The person index: which pseudonym belongs to a (keyed) NHS number.

Entries are ``lookup = HMAC(key_v, NHS number)`` → ``pseudonym``; NHS numbers themselves are
not stored. A person's pseudonym is fixed the first time they are seen (the first 128 bits of
the HMAC under the key current then, as hex) and never changes: after a key rotation, a person
first seen under an older key is found through that key's lookup and given an entry under the
new key too, so old and new submissions keep linking.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from confide.common.errors import in_use
from confide.pseudonymiser.keys import KeyRing, hmac_many


class PersonIndex:
    def __init__(self, path: Path) -> None:
        try:
            self.con = duckdb.connect(str(path))
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            raise in_use("pseudonymiser's person index") from None
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS persons ("
            " lookup BLOB PRIMARY KEY, key_version INTEGER NOT NULL, pseudonym VARCHAR NOT NULL)"
        )

    def close(self) -> None:
        self.con.close()

    def _find(self, lookups: list[bytes]) -> dict[int, str]:
        probe = pa.table({"i": pa.array(range(len(lookups)), pa.int64()), "lookup": lookups})
        self.con.register("probe", probe)
        try:
            rows = self.con.sql(
                "SELECT probe.i, persons.pseudonym FROM probe JOIN persons USING (lookup)"
            ).to_arrow_table()
        finally:
            self.con.unregister("probe")
        return dict(
            zip(rows.column("i").to_pylist(), rows.column("pseudonym").to_pylist(), strict=True)
        )

    def _insert(self, lookups: list[bytes], version: int, pseudonyms: list[str]) -> None:
        unique = dict(zip(lookups, pseudonyms, strict=True))
        if not unique:
            return
        rows = pa.table(
            {
                "lookup": pa.array(list(unique), pa.binary()),
                "key_version": pa.array([version] * len(unique), pa.int32()),
                "pseudonym": pa.array(list(unique.values()), pa.string()),
            }
        )
        self.con.register("new_rows", rows)
        try:
            self.con.execute("INSERT OR IGNORE INTO persons SELECT * FROM new_rows")
        finally:
            self.con.unregister("new_rows")

    def pseudonyms(self, numbers: list[str], ring: KeyRing, *, create: bool) -> list[str | None]:
        """Pseudonyms for valid, normalised NHS numbers; unknown people are added if ``create``."""
        messages = [n.encode() for n in numbers]
        current = hmac_many(ring.keys[ring.current], messages)
        result: list[str | None] = [None] * len(numbers)
        for i, pseudonym in self._find(current).items():
            result[i] = pseudonym
        self.con.execute("BEGIN")
        try:
            for version in ring.newest_first():
                if version == ring.current:
                    continue
                missing = [i for i, p in enumerate(result) if p is None]
                if not missing:
                    break
                older = hmac_many(ring.keys[version], [messages[i] for i in missing])
                found = self._find(older)
                for j, pseudonym in found.items():
                    result[missing[j]] = pseudonym
                self._insert(
                    [current[missing[j]] for j in found], ring.current, list(found.values())
                )
            if create:
                fresh = [i for i, p in enumerate(result) if p is None]
                new_pseudonyms = [current[i][:16].hex() for i in fresh]
                for i, p in zip(fresh, new_pseudonyms, strict=True):
                    result[i] = p
                self._insert([current[i] for i in fresh], ring.current, new_pseudonyms)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return result
