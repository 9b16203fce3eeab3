"""The public release register, built from the transparency log's entries and nothing else.

One row per ``release`` entry: who received what, for which purpose, on which legal basis, in
which form, about how many patients, whether opt-outs were applied (and if not, why), the date,
and the log index (with its leaf hash) that proves the row. Because every field comes from a
logged entry, anyone holding the log can rebuild the register byte for byte and check each row
with an inclusion proof (``GET /api/ledger/proof/inclusion?leaf_hash=…``).

A project's title (from its ``project_applied`` entry) and the deletion notices that name a
release are joined in, again from the log only.

:func:`register_rows` reads a ledger; :func:`rows_from_entries` is the pure fold over decoded
entries; :func:`select_rows` filters and sorts; :func:`to_csv`, :func:`to_json` and
:func:`to_html` render.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from typing import Any, Protocol

import orjson
from jinja2 import Environment, select_autoescape

from confide.common.errors import InvalidInput
from confide.ledger import merkle
from confide.ledger.checkpoint import Checkpoint
from confide.ledger.entries import Entry, decode

PAGE = 1000


class LogReader(Protocol):
    """What the register needs of a ledger (``Ledger`` in-process, or an API client)."""

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]: ...


@dataclass(frozen=True)
class RegisterRow:
    """One release, as the public register shows it."""

    index: int  # the log index of the release entry: the proof of this row
    leaf_hash: str  # hex SHA-256(0x00 || entry): what an inclusion proof is asked for by
    release_id: str
    date: str
    organisation: str
    project_id: str
    project_title: str | None
    purpose: str
    recipient_kind: str
    legal_basis: str
    data_form: str
    datasets: tuple[str, ...]
    patients: int
    opt_outs_applied: bool
    opt_outs_reason: str | None
    output_id: str | None
    output_digest: str | None
    logged_at: str
    deletion_notices: tuple[int, ...] = field(default=())  # log indices naming this release

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["datasets"] = list(self.datasets)
        out["deletion_notices"] = list(self.deletion_notices)
        return out


COLUMNS = tuple(f.name for f in fields(RegisterRow))
SORT_KEYS = tuple(c for c in COLUMNS if c not in ("datasets", "deletion_notices"))


def rows_from_entries(entries: Iterable[tuple[int, bytes]]) -> list[RegisterRow]:
    """Fold raw log entries ``(index, leaf_input)`` into register rows, in log order.

    Only ``release`` entries make rows; ``project_applied`` entries give project titles and
    ``deletion_notice`` entries are linked to the releases they name.
    """
    titles: dict[str, str] = {}
    releases: list[tuple[Entry, bytes]] = []
    notices: dict[str, list[int]] = {}
    for index, raw in entries:
        entry = decode(index, raw)
        if entry.kind == "project_applied":
            titles.setdefault(entry.body["project_id"], entry.body["title"])
        elif entry.kind == "release":
            releases.append((entry, merkle.leaf_hash(raw)))
        elif entry.kind == "deletion_notice":
            for release_id in entry.body["release_ids"]:
                notices.setdefault(release_id, []).append(entry.index)
    return [_row(e, h, titles, notices) for e, h in releases]


def _row(
    entry: Entry, leaf: bytes, titles: dict[str, str], notices: dict[str, list[int]]
) -> RegisterRow:
    b = entry.body
    return RegisterRow(
        index=entry.index,
        leaf_hash=leaf.hex(),
        release_id=b["release_id"],
        date=b["date"],
        organisation=b["organisation"],
        project_id=b["project_id"],
        project_title=titles.get(b["project_id"]),
        purpose=b["purpose"],
        recipient_kind=b["recipient_kind"],
        legal_basis=b["legal_basis"],
        data_form=b["data_form"],
        datasets=tuple(b["datasets"]),
        patients=b["patients"],
        opt_outs_applied=b["opt_outs_applied"],
        opt_outs_reason=b.get("opt_outs_reason"),
        output_id=b.get("output_id"),
        output_digest=b.get("output_digest"),
        logged_at=entry.at,
        deletion_notices=tuple(n for n in notices.get(b["release_id"], ()) if n > entry.index),
    )


def read_log(ledger: LogReader, size: int) -> Iterator[tuple[int, bytes]]:
    """Raw entries ``0 <= index < size``, read in pages of :data:`PAGE`."""
    for first in range(0, size, PAGE):
        yield from ledger.entries(first, min(first + PAGE, size))


def register_rows(ledger: LogReader, size: int) -> list[RegisterRow]:
    """The register of the first ``size`` log entries (give a signed checkpoint's size, so
    every row is covered by that checkpoint)."""
    return rows_from_entries(read_log(ledger, size))


@dataclass(frozen=True)
class RegisterFilter:
    """Which rows to show. Text matches are case-insensitive; ``organisation`` is a substring,
    the other text fields exact. Dates are inclusive ``YYYY-MM-DD`` bounds."""

    organisation: str | None = None
    project_id: str | None = None
    purpose: str | None = None
    recipient_kind: str | None = None
    legal_basis: str | None = None
    data_form: str | None = None
    dataset: str | None = None
    opt_outs_applied: bool | None = None
    date_from: str | None = None
    date_to: str | None = None

    def accepts(self, row: RegisterRow) -> bool:
        def same(wanted: str | None, value: str) -> bool:
            return wanted is None or wanted.strip().lower() == value.lower()

        return (
            (
                self.organisation is None
                or self.organisation.strip().lower() in row.organisation.lower()
            )
            and same(self.project_id, row.project_id)
            and same(self.purpose, row.purpose)
            and same(self.recipient_kind, row.recipient_kind)
            and same(self.legal_basis, row.legal_basis)
            and same(self.data_form, row.data_form)
            and (
                self.dataset is None
                or self.dataset.strip().lower() in (d.lower() for d in row.datasets)
            )
            and (self.opt_outs_applied is None or self.opt_outs_applied == row.opt_outs_applied)
            and (self.date_from is None or row.date >= self.date_from)
            and (self.date_to is None or row.date <= self.date_to)
        )


def select_rows(
    rows: Iterable[RegisterRow],
    where: RegisterFilter | None = None,
    sort: str = "index",
    descending: bool = False,
) -> list[RegisterRow]:
    """Rows passing ``where``, sorted by the column ``sort`` (ties keep log order)."""
    if sort not in SORT_KEYS:
        raise InvalidInput(
            f"The register cannot be sorted by '{sort}'.", hint="Sort by: " + ", ".join(SORT_KEYS)
        )
    for bound in (where.date_from, where.date_to) if where else ():
        if bound is not None and not _is_date(bound):
            raise InvalidInput("Give register dates as YYYY-MM-DD.")
    kept = [r for r in rows if where is None or where.accepts(r)]
    kept.sort(key=lambda r: r.index)

    def key(r: RegisterRow) -> tuple[bool, Any]:
        value = getattr(r, sort)
        return (value is None, value if value is not None else "")

    kept.sort(key=key, reverse=descending)
    return kept


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


# --- rendering -------------------------------------------------------------------------------

CSV_HEADER = (
    "log_index",
    "release_id",
    "date",
    "organisation",
    "project_id",
    "project_title",
    "purpose",
    "recipient_kind",
    "legal_basis",
    "data_form",
    "datasets",
    "patients",
    "opt_outs_applied",
    "opt_outs_reason",
    "leaf_hash",
)


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def to_csv(rows: Iterable[RegisterRow]) -> str:
    """The register as CSV (RFC 4180, header row first, datasets joined with ``;``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow(
            [
                _cell(v)
                for v in (
                    r.index,
                    r.release_id,
                    r.date,
                    r.organisation,
                    r.project_id,
                    r.project_title,
                    r.purpose,
                    r.recipient_kind,
                    r.legal_basis,
                    r.data_form,
                    ";".join(r.datasets),
                    r.patients,
                    "yes" if r.opt_outs_applied else "no",
                    r.opt_outs_reason,
                    r.leaf_hash,
                )
            ]
        )
    return out.getvalue()


def to_json(rows: Iterable[RegisterRow], checkpoint: Checkpoint | None = None) -> str:
    """The register as one JSON document: the checkpoint it was read at, and the rows."""
    doc: dict[str, Any] = {"releases": [r.as_dict() for r in rows]}
    if checkpoint is not None:
        doc["checkpoint"] = {**checkpoint.as_dict(), "note": checkpoint.text}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Confide release register</title>
<style>
body { font-family: Arial, sans-serif; margin: 2em; color: #212b32; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #d8dde0; padding: 0.4em 0.6em; text-align: left;
  vertical-align: top; }
th { background: #f0f4f5; }
td.num { text-align: right; }
code { font-size: 0.85em; }
</style>
</head>
<body>
<h1>Release register</h1>
<p>Every release of data from Confide, read from the public transparency log.
{%- if checkpoint %} This register covers the first {{ checkpoint.size }} log entries
(signed checkpoint root <code>{{ checkpoint.root.hex() }}</code>).{% endif %}
Each row's log index proves it: ask the log for an inclusion proof of its leaf hash.</p>
<p>{{ rows | length }} release{{ "" if rows | length == 1 else "s" }}.</p>
<table>
<thead><tr>
<th>Date and release</th><th>Organisation</th><th>Project</th><th>Purpose</th><th>Recipient</th>
<th>Legal basis</th><th>Data form</th><th>Datasets</th><th>Patients</th>
<th>Opt-outs applied</th><th>Log index</th>
</tr></thead>
<tbody>
{%- for r in rows %}
<tr>
<td>{{ r.date }}<br><code>{{ r.release_id }}</code></td>
<td>{{ r.organisation }}</td>
<td>{{ r.project_title or r.project_id }}<br><code>{{ r.project_id }}</code></td>
<td>{{ r.purpose }}</td>
<td>{{ r.recipient_kind }}</td>
<td>{{ r.legal_basis }}</td>
<td>{{ forms.get(r.data_form, r.data_form) }}</td>
<td>{{ r.datasets | join(", ") }}</td>
<td class="num">{{ r.patients }}</td>
<td>{% if r.opt_outs_applied %}yes{% else %}no{% if r.opt_outs_reason %}: because
{{ r.opt_outs_reason }}{% endif %}{% endif %}</td>
<td><code title="leaf hash {{ r.leaf_hash }}">{{ r.index }}</code>
{%- if r.deletion_notices %}<br>deletion notice{{ "s" if r.deletion_notices | length > 1 }}:
{{ r.deletion_notices | join(", ") }}{% endif %}</td>
</tr>
{%- endfor %}
</tbody>
</table>
</body>
</html>
"""

FORM_LABELS = {
    "aggregate": "aggregate",
    "dp": "differentially private aggregate",
    "extract": "record-level extract",
}
_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_template = _env.from_string(_HTML)


def to_html(rows: Iterable[RegisterRow], checkpoint: Checkpoint | None = None) -> str:
    """A minimal standalone HTML page of the register (the web app renders its own)."""
    return _template.render(rows=list(rows), checkpoint=checkpoint, forms=FORM_LABELS)


def render(rows: Iterable[RegisterRow], fmt: str, checkpoint: Checkpoint | None = None) -> str:
    """The register in ``fmt``: ``csv``, ``json`` or ``html``."""
    fmt = fmt.strip().lower()
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "json":
        return to_json(rows, checkpoint)
    if fmt == "html":
        return to_html(rows, checkpoint)
    raise InvalidInput(f"Unknown register format '{fmt[:20]}'.", hint="Use html, csv or json.")
