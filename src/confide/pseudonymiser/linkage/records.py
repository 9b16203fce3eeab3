"""Linkage records: the columns the model compares, prepared the same way for every input.

Identity rows opened from a submission, the people of the person index and the files given to
``confide link`` all pass through :func:`prepare`, so the model sees one shape:

| column | meaning |
|---|---|
| ``unique_id`` | the record's id (text) |
| ``nhs_number`` | digits only (spaces and hyphens removed); null unless 9 to 11 digits |
| ``birth_date`` | a date; null when missing or not a real ``YYYY-MM-DD`` date |
| ``birth_year`` | its year (for blocking on names) |
| ``sex`` | ``male`` or ``female``; null when missing or unknown |
| ``postcode`` | the standard form (``LS1 4AP``); null when not a valid postcode |
| ``postcode_sector``, ``postcode_district`` | ``LS1 4``, ``LS1`` |
| ``postcodes`` | every postcode known for the record: its own, or a person's history |
| ``given_name``, ``family_name`` | upper case, letters, digits, apostrophes and spaces |
| ``address_line`` | the same; these three only when the input has them |
| ``fingerprint`` | digest of NHS number, date of birth, postcode, sex (a record sent again) |

A number of the wrong length is kept when it is 9 or 11 digits: one digit dropped or doubled
is still one edit from the right number.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from confide.common import postcode as postcodes

# Optional inputs the model compares when both sides have them.
NAME_COLUMNS = ("given_name", "family_name")
ADDRESS_COLUMNS = ("address_line",)
OPTIONAL_COLUMNS = NAME_COLUMNS + ADDRESS_COLUMNS
# What a file given to ``confide link`` may carry (``patient_id`` is required).
INPUT_COLUMNS = ("patient_id", "nhs_number", "birth_date", "sex", "postcode", *OPTIONAL_COLUMNS)

_SEX = {"male": "male", "m": "male", "female": "female", "f": "female"}


def _postcode_parts(raw: pa.Array) -> pa.Table:
    """(raw, postcode, sector, district) for each distinct raw postcode."""
    distinct = [v for v in raw.unique().to_pylist() if v is not None]
    normal = [postcodes.normalise(v) for v in distinct]
    return pa.table(
        {
            "raw": pa.array(distinct, pa.string()),
            "postcode": pa.array(normal, pa.string()),
            "sector": pa.array([postcodes.sector(v) for v in normal], pa.string()),
            "district": pa.array([postcodes.district(v) for v in normal], pa.string()),
        }
    )


def _text(expression: str, name: str) -> str:
    """SQL: upper case, only letters, digits, apostrophes and single spaces; '' → null."""
    cleaned = f"regexp_replace(upper(CAST({expression} AS VARCHAR)), '[^A-Z0-9'' ]', ' ', 'g')"
    return f"nullif(trim(regexp_replace({cleaned}, ' +', ' ', 'g')), '') AS {name}"


def prepare(table: pa.Table, id_column: str) -> pa.Table:
    """The model's columns for each row of ``table`` (see the module docstring).

    ``table`` needs ``id_column``; any of ``nhs_number``, ``birth_date``, ``sex``, ``postcode``
    it lacks are null; the optional name and address columns are kept only when present.
    A ``postcodes`` list column, when given, is used as the record's postcode history."""
    present = set(table.column_names)
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 2")
        ordinal = pa.array(range(table.num_rows), pa.int64())
        con.register("raw_records", table.append_column("__row", ordinal))
        raw_postcode = (
            table.column("postcode").cast(pa.string())
            if "postcode" in present
            else pa.nulls(0, pa.string())
        )
        con.register("postcode_parts", _postcode_parts(raw_postcode))

        def given(name: str, kind: str = "VARCHAR") -> str:
            return f"CAST(r.{name} AS {kind})" if name in present else f"CAST(NULL AS {kind})"

        number = (
            f"regexp_replace(trim({given('nhs_number')}), '[\\s-]', '', 'g')"
            if "nhs_number" in present
            else "CAST(NULL AS VARCHAR)"
        )
        birth = (
            "try_cast(CAST(r.birth_date AS VARCHAR) AS DATE)"
            if "birth_date" in present
            else "CAST(NULL AS DATE)"
        )
        sexes = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _SEX.items())
        history = (
            "list_filter(list_distinct(list_concat(r.postcodes, [p.postcode])), "
            "lambda x: x IS NOT NULL)"
            if "postcodes" in present
            else "CASE WHEN p.postcode IS NULL THEN [] ELSE [p.postcode] END"
        )
        optional = [_text(f"r.{c}", c) for c in OPTIONAL_COLUMNS if c in present]
        columns = [
            f"CAST(r.{id_column} AS VARCHAR) AS unique_id",
            f"CASE WHEN regexp_full_match({number}, '[0-9]{{9,11}}') THEN {number} END "
            "AS nhs_number",
            f"{birth} AS birth_date",
            f"year({birth}) AS birth_year",
            f"CASE lower(trim({given('sex')})) {sexes} END AS sex",
            "p.postcode AS postcode",
            "p.sector AS postcode_sector",
            "p.district AS postcode_district",
            f"CAST({history} AS VARCHAR[]) AS postcodes",
            *optional,
        ]
        # Over the prepared values, so spacing or case differences do not change it.
        fingerprint = (
            "md5(concat_ws('|', coalesce(nhs_number, ''), coalesce(CAST(birth_date AS VARCHAR), "
            "''), coalesce(postcode, ''), coalesce(sex, '')))"
        )
        join = (
            "LEFT JOIN postcode_parts p ON p.raw = CAST(r.postcode AS VARCHAR)"
            if "postcode" in present
            else "LEFT JOIN postcode_parts p ON false"
        )
        return con.sql(
            f"SELECT *, {fingerprint} AS fingerprint FROM (SELECT {', '.join(columns)} "
            f"FROM raw_records r {join} ORDER BY r.__row)"
        ).to_arrow_table()
    finally:
        con.close()


def optional_columns(*tables: pa.Table) -> tuple[str, ...]:
    """The optional columns every one of ``tables`` has with at least one value."""
    return tuple(
        c
        for c in OPTIONAL_COLUMNS
        if all(c in t.column_names and t.column(c).null_count < t.num_rows for t in tables)
    )
