"""Cohorts: per-person work is reused between queries only while nothing it depends on changed.

A cohort is reused by every query of a project that sees the same store version and the same
exclusions; a choice, an ingest or a new key starts a new one. Releases link their cohort's
membership files and publish its salt, which the usage report and deletion notices read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tre_world import TreWorld, build, population_extract

from confide.choices.store import read_version
from confide.tre.cohorts import KEEP, Cohort, open_cohort
from confide.usage.report import (
    FolderReleaseFiles,
    is_member,
    membership_digest,
    parse_members,
    release_salt,
)

BY_SEX = "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY p.sex"
EVENTS = "SELECT e.code, count(DISTINCT e.patient_id) AS n FROM events e GROUP BY e.code"


@pytest.fixture(scope="module")
def tre(tmp_path_factory: pytest.TempPathFactory) -> TreWorld:
    made = build(tmp_path_factory.mktemp("tre-cohorts"), practices=2, patients=40, seed=5)
    yield made
    made.close()


def _run(tre: TreWorld, sql: str = BY_SEX) -> str:
    """The release id of a query's output (released, or held because it differs from an
    earlier one by a few people: its files wait in the pending folder)."""
    outcome = tre.service.run(tre.principal("researcher"), "demo-research", sql)
    assert outcome.status in ("released", "held_for_review"), outcome.reason
    release_id = tre.store.query(outcome.id).release_id
    assert release_id
    return release_id


def _file(tre: TreWorld, name: str) -> Path:
    released = tre.store.releases / name
    return released if released.exists() else tre.store.pending / name


def _salt(tre: TreWorld, release_id: str) -> str:
    return _file(tre, f"{release_id}.salt").read_text().strip()


def _members(tre: TreWorld, release_id: str) -> int:
    return _file(tre, f"{release_id}.contributors").stat().st_size // 32


def test_queries_on_an_unchanged_store_share_one_cohort(tre: TreWorld) -> None:
    first, second = _run(tre), _run(tre)
    assert _salt(tre, first) == _salt(tre, second)
    a = tre.store.releases / f"{first}.contributors"
    b = tre.store.releases / f"{second}.contributors"
    assert os.path.samefile(a, b)  # linked, not recomputed
    # A different set of tables has its own contributors file within the cohort.
    other = _run(tre, EVENTS)
    assert _salt(tre, other) == _salt(tre, first)
    assert not os.path.samefile(tre.store.releases / f"{other}.contributors", a)


def test_a_choice_starts_a_new_cohort_and_applies_at_once(tre: TreWorld) -> None:
    before = _run(tre)
    person = tre.numbers[0]
    version = tre.registry.version()
    tre.registry.set(person, {"no_research": True}, "online")
    try:
        assert tre.registry.version() == version + 1
        during = _run(tre)
        assert _salt(tre, during) != _salt(tre, before)
        assert _members(tre, during) == _members(tre, before) - 1
        files = FolderReleaseFiles(_file(tre, f"{during}.salt").parent)
        hub = tre.world.pseudonymiser.pseudonyms_for([person])[0]
        salt = release_salt(during, files.read(f"{during}.salt"))
        assert salt == _salt(tre, during)
        mark = membership_digest(salt, hub)
        assert is_member(parse_members(files.read(f"{during}.excluded")), mark)
        assert not is_member(parse_members(files.read(f"{during}.contributors")), mark)
    finally:
        tre.registry.set(person, {"no_research": False}, "online")
    after = _run(tre)
    assert _members(tre, after) == _members(tre, before)


def test_an_ingest_starts_a_new_cohort(tre: TreWorld) -> None:
    before = _run(tre)
    extract, _ = population_extract("B86100", 5, seed=99)
    tre.world.hub.ingest(tre.world.submit(extract))
    after = _run(tre)
    assert _salt(tre, after) != _salt(tre, before)
    assert _members(tre, after) == _members(tre, before) + 5


def test_the_registry_version_is_bumped_in_the_writing_transaction(tre: TreWorld) -> None:
    with tre.registry.engine.connect() as conn:
        start = read_version(conn)
    tre.registry.bulk_set([])  # nothing recorded: nothing changes
    with tre.registry.engine.connect() as conn:
        assert read_version(conn) == start


def test_a_half_built_cohort_is_never_seen(tmp_path: Path) -> None:
    folder = tmp_path / "project" / "key"

    def failing(tmp: Path, salt: str) -> None:
        (tmp / "people.parquet").write_bytes(b"partial")
        raise RuntimeError("stopped part-way")

    with pytest.raises(RuntimeError):
        open_cohort(folder, failing)
    assert not folder.exists()
    assert [p.name for p in folder.parent.iterdir()] == []  # the temporary folder is gone

    def working(tmp: Path, salt: str) -> None:
        (tmp / "people.parquet").write_bytes(b"ok")

    cohort = open_cohort(folder, working)
    assert cohort == Cohort.at(folder) and len(cohort.salt) == 32
    assert open_cohort(folder, failing) == cohort  # built once: not rebuilt


def test_only_the_newest_cohorts_of_a_project_are_kept(tmp_path: Path) -> None:
    made = []
    for i in range(KEEP + 3):
        made.append(open_cohort(tmp_path / "project" / f"k{i}", lambda tmp, salt: None))
        os.utime(made[-1].folder, (1_000_000 + i, 1_000_000 + i))
    open_cohort(tmp_path / "project" / "newest", lambda tmp, salt: None)
    kept = {p.name for p in (tmp_path / "project").iterdir()}
    assert "newest" in kept and len(kept) == KEEP
    assert "k0" not in kept and f"k{KEEP + 2}" in kept


def test_a_damaged_salt_file_is_not_trusted() -> None:
    assert release_salt("r" * 32, None) == "r" * 32  # releases from before salts
    assert release_salt("r" * 32, b"0123456789abcdef0123456789abcdef\n") == (
        "0123456789abcdef0123456789abcdef"
    )
    assert release_salt("r" * 32, b"not a salt") is None


def _grant_for_all_tables(tre: TreWorld):  # type: ignore[no-untyped-def]
    from datetime import date

    from confide.access.model import LegalBasis, ProjectGrant, Purpose, RecipientKind

    return ProjectGrant(
        project_id="materialise-test",
        slug="materialise-test",
        organisation="org",
        purpose=Purpose("research"),
        recipient_kind=RecipientKind("academic"),
        legal_basis=LegalBasis("public_task"),
        tables={
            "patients": ("sex", "birth_year"),
            "events": ("code", "date", "value"),
            "medications": ("code", "date"),
            "registrations": ("practice", "start_date"),
        },
        window_start=date(2014, 1, 1),
        window_end=date(2020, 12, 31),
        expires_on=date(2030, 1, 1),
    )


def test_materialised_views_hold_exactly_the_joined_views_rows(tre: TreWorld) -> None:
    import duckdb

    from confide.tre.exclusions import OUTPUT_FORMS, RegistryExclusions
    from confide.tre.views import build_views

    grant = _grant_for_all_tables(tre)
    tables = ["events", "medications", "registrations"]
    tre.registry.set(tre.numbers[1], {"no_research": True}, "online")
    try:
        excluded = RegistryExclusions(tre.registry, tre.world.pseudonymiser).excluded(
            grant, OUTPUT_FORMS["rounding"]
        )
        assert len(excluded.pseudonyms) == 1
        key = b"m" * 32

        def rows(materialise: list[str]) -> dict[str, list]:
            con = duckdb.connect()
            views = build_views(con, tre.world.hub.records, grant, excluded.pseudonyms, key,
                                cohorts=tre.store.cohorts, materialise=materialise)  # fmt: skip
            out = {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                   for t in tables}  # fmt: skip
            out["_stored"] = sorted(p.name for p in views.cohort.folder.glob("*.parquet"))
            con.close()
            return out

        joined = rows([])
        assert joined.pop("_stored") == ["people.parquet"]
        stored = rows(tables)
        assert stored.pop("_stored") == sorted(
            ["people.parquet", *(f"{t}.parquet" for t in tables)]
        )
        again = rows([])  # later queries of the cohort read the stored copies
        again.pop("_stored")
        assert joined == stored == again
        assert all(joined[t] for t in tables)
        hub = tre.world.pseudonymiser.pseudonyms_for([tre.numbers[1]])[0]
        from confide.tre.views import project_pseudonym

        gone = project_pseudonym(key, hub)
        assert all(r[0] != gone for t in tables for r in stored[t])
    finally:
        tre.registry.set(tre.numbers[1], {"no_research": False}, "online")


def test_young_cohorts_are_never_pruned_while_queries_may_read_them(tmp_path: Path) -> None:
    for i in range(KEEP + 2):
        open_cohort(tmp_path / "project" / f"k{i}", lambda tmp, salt: None)
    assert len(list((tmp_path / "project").iterdir())) == KEEP + 2
