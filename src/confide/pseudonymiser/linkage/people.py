"""The identifiers linkage compares, for each person in the index (``linkage_people``).

One row per pseudonym: the NHS number, date of birth and sex first seen, the latest postcode,
and every postcode seen from any source (the person's postcode history: a hospital that still
has someone's previous address links to them through it). Kept in the pseudonymiser's own
database; nothing here leaves it.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from confide.common.clock import naive_utcnow
from confide.pseudonymiser.linkage.db import run, with_table
from confide.pseudonymiser.linkage.scoring import frequency_sql

# What the model's blocking pairs on (see ``model.blocking_rules``).
BLOCKING_KEYS = ("nhs_number", "birth_date", "postcode")


class LinkagePeople:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def observe(self, seen: pa.Table) -> pa.Table:
        """Record identifiers seen for linked people (prepared records whose ``unique_id`` is
        the pseudonym). Returns ``pseudonym`` of those new or with something new."""
        grouped = with_table(
            self.con,
            "seen",
            seen,
            """SELECT unique_id AS pseudonym, any_value(nhs_number) AS nhs_number,
                      any_value(birth_date) AS birth_date, any_value(sex) AS sex,
                      any_value(postcode) AS postcode,
                      list_distinct(flatten(list(postcodes))) AS postcodes
               FROM seen GROUP BY unique_id""",
        )
        changed = with_table(
            self.con,
            "grouped",
            grouped,
            """SELECT g.* FROM grouped g LEFT JOIN linkage_people p USING (pseudonym)
               WHERE p.pseudonym IS NULL
                  OR (g.postcode IS NOT NULL AND g.postcode IS DISTINCT FROM p.postcode)
                  OR len(list_filter(g.postcodes, lambda x: NOT list_contains(p.postcodes, x))) > 0
                  OR (p.birth_date IS NULL AND g.birth_date IS NOT NULL)
                  OR (p.sex IS NULL AND g.sex IS NOT NULL)""",
        )
        with_table(
            self.con,
            "changed",
            changed,
            """INSERT INTO linkage_people
               SELECT pseudonym, nhs_number, birth_date, sex, postcode, postcodes, ?
               FROM changed
               ON CONFLICT (pseudonym) DO UPDATE SET
                 postcode = coalesce(excluded.postcode, postcode),
                 postcodes = list_distinct(list_concat(postcodes, excluded.postcodes)),
                 birth_date = coalesce(birth_date, excluded.birth_date),
                 sex = coalesce(sex, excluded.sex),
                 nhs_number = coalesce(nhs_number, excluded.nhs_number),
                 updated_at = excluded.updated_at""",
            [naive_utcnow()],
        )
        return changed.select(["pseudonym"])

    def known_share(self, seen: pa.Table) -> float:
        """The share of ``seen`` (prepared, by pseudonym) already in the index."""
        if seen.num_rows == 0:
            return 0.0
        known = with_table(
            self.con,
            "seen",
            seen.select(["unique_id"]),
            "SELECT count(DISTINCT unique_id) AS n FROM seen "
            "WHERE unique_id IN (SELECT pseudonym FROM linkage_people)",
        )
        distinct = len(set(seen.column("unique_id").to_pylist()))
        return known.column("n")[0].as_py() / distinct

    def count(self) -> int:
        return int(run(self.con, "SELECT count(*) FROM linkage_people")[0][0])

    def table(self, pseudonyms: pa.Table | None = None) -> pa.Table:
        """People as linkage input (``patient_id`` = pseudonym): all, or those in
        ``pseudonyms`` (a table with a ``pseudonym`` column)."""
        columns = "pseudonym AS patient_id, nhs_number, birth_date, sex, postcode, postcodes"
        if pseudonyms is None:
            return self.con.sql(f"SELECT {columns} FROM linkage_people").to_arrow_table()
        return with_table(
            self.con,
            "wanted",
            pseudonyms.select(["pseudonym"]),
            f"SELECT {columns} FROM linkage_people JOIN (SELECT DISTINCT pseudonym FROM wanted) "
            "USING (pseudonym)",
        )

    def candidates(self, records: pa.Table) -> pa.Table:
        """``pseudonym`` of everyone sharing a blocking key with any of ``records`` (prepared):
        the only people the model can pair them with."""
        joins = " UNION ".join(
            f"SELECT p.pseudonym FROM linkage_people p JOIN probe r USING ({key})"
            for key in BLOCKING_KEYS
        )
        return with_table(self.con, "probe", records.select(list(BLOCKING_KEYS)), joins)

    def numbers_of(self, pseudonyms: list[str]) -> dict[str, str]:
        """Each known person's NHS number (to ask the choices registry about them)."""
        asked = pa.table({"pseudonym": pa.array(pseudonyms, pa.string())})
        rows = with_table(
            self.con,
            "asked",
            asked,
            "SELECT pseudonym, nhs_number FROM linkage_people JOIN asked USING (pseudonym) "
            "WHERE nhs_number IS NOT NULL",
        )
        return dict(
            zip(rows.column("pseudonym").to_pylist(), rows.column("nhs_number").to_pylist(),
                strict=True)
        )  # fmt: skip

    def frequencies(self) -> dict[str, pa.Table]:
        """How common each date of birth and postcode is among everyone (the model's term
        frequencies), counted over the whole index even when only candidates are scored."""
        return {
            column: self.con.sql(frequency_sql(column, "linkage_people")).to_arrow_table()
            for column in ("birth_date", "postcode")
        }
