"""The files a release leaves for the patients' usage report, written when the TRE releases an
output (or holds it for review).

Contract for the patients' usage report (built elsewhere on these files)
-----------------------------------------------------------------------
For every release (automatic, or after two checkers approved) the TRE writes, under
``<home>/tre/releases``:

* ``<release_id>.salt``: 32 hex digits, the salt of the release's cohort
  (:mod:`confide.tre.cohorts`);
* ``<release_id>.contributors``: the sorted, unique SHA-256 digests of
  ``salt + ":" + hub_pseudonym`` (UTF-8, no separator between digests: raw 32-byte values
  concatenated) of everyone with rows in the views the query read, after exclusions;
* ``<release_id>.excluded``: the same construction for the people in the record store whom
  their choices left out of this project at the time of the query.

``release_id`` is the ``release_id`` of the ledger's ``release`` entry (32 hex digits). A
person's report recomputes SHA-256(salt ":" their hub pseudonym) for each release in the
ledger and looks it up (binary search) in the two files (releases made before salts were
published have no ``.salt`` file and use the release id as their salt). Outputs held for review
keep their files under ``<home>/tre/pending`` until the decision (moved on approval, deleted on
rejection), with the sketches of their cells (``<release_id>.sketches.parquet``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from confide.tre import views as project_views

MEMBERSHIP_FILES = ("salt", "contributors", "excluded")
SKETCH_SUFFIX = "sketches.parquet"


@dataclass(frozen=True)
class MembershipFiles:
    """A release's membership files in the cohort, by their suffix."""

    salt: Path
    contributors: Path
    excluded: Path

    def by_suffix(self) -> dict[str, Path]:
        return {suffix: getattr(self, suffix) for suffix in MEMBERSHIP_FILES}


def membership(
    con: duckdb.DuckDBPyConnection, views: project_views.ProjectViews, tables: frozenset[str]
) -> MembershipFiles:
    """The membership files of a release that read ``tables``."""
    members = views.members
    return MembershipFiles(
        salt=members.folder / "salt",
        contributors=project_views.contributor_commitments(con, views, tables),
        excluded=members.excluded,
    )


def link_files(folder: Path, release_id: str, files: MembershipFiles) -> None:
    """Link the cohort's membership files under the release's name in ``folder`` (copy if
    linking fails: another file system)."""
    for suffix, source in files.by_suffix().items():
        target = folder / f"{release_id}.{suffix}"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
