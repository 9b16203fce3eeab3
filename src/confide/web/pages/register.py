"""The public release register: every release in the transparency log, filtered and sorted.

Built only from the log (:mod:`confide.ledger.register`), read at the latest signed checkpoint
so every row is covered by it. Filters and sort arrive as GET query parameters from a plain
HTML form, so the page works without JavaScript and any view can be bookmarked or shared. The
CSV and JSON downloads take the same parameters and hold exactly the rows the page lists (all
pages of them). A parameter that cannot be read gets a clear page that repeats none of it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from confide.choices import policy
from confide.common.errors import InvalidInput
from confide.ledger import register as reg
from confide.ledger.checkpoint import Checkpoint
from confide.ledger.entries import EntryRejected, decode
from confide.ledger.log import Ledger
from confide.web import labels
from confide.web.context import web_state
from confide.web.rendering import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_QUERY = 1000  # characters of the whole query string: our own form never sends more
MAX_TEXT = 100
MAX_PAGE = 100_000
SORTS = {"date": "Date", "patients": "Number of patients", "project": "Project"}
ORDERS = {
    "desc": "Descending: newest, largest or Z first",
    "asc": "Ascending: oldest, smallest or A first",
}
_TEXT = re.compile(r"[\w '’&(),./:-]*")
_CACHE = "register_entries"
REGISTER_KINDS = frozenset({"release", "project_applied", "deletion_notice"})


@dataclass(frozen=True)
class RegisterQuery:
    """What the person asked the register for (every field already checked)."""

    organisation: str = ""
    purpose: str = ""
    recipient: str = ""
    project: str = ""
    sort: str = "date"
    order: str = "desc"
    page: int = 1

    def link(self, path: str = "/register", **changes: Any) -> str:
        """``path`` with this query (and ``changes``), leaving out what is at its default."""
        wanted = asdict(replace(self, **changes))
        default = asdict(RegisterQuery())
        params = {k: v for k, v in wanted.items() if v != default[k]}
        return f"{path}?{urlencode(params)}" if params else path


class BadRegisterQuery(InvalidInput):
    """A register address that cannot be read: the page says what to do and repeats none of it."""


def _text(raw: str, what: str) -> str:
    text = " ".join(raw.split())
    if len(text) > MAX_TEXT:
        raise BadRegisterQuery(f"The {what} you searched for is too long.")
    if not _TEXT.fullmatch(text):
        raise BadRegisterQuery(
            f"Search for {'a' if what == 'project' else 'an'} {what} using letters, numbers, "
            "spaces and simple punctuation ( - ' & , . / : ) only."
        )
    return text


def _choice(raw: str, allowed: dict[str, str] | tuple[str, ...], what: str) -> str:
    value = raw.strip()
    if value and value not in allowed:
        raise BadRegisterQuery(f"Choose {what} from the list on the register page.")
    return value


def parse_query(request: Request) -> RegisterQuery:
    """The register's query parameters, checked; :class:`BadRegisterQuery` when unreadable."""
    if len(request.url.query) > MAX_QUERY:
        raise BadRegisterQuery("The web address is too long to read.")
    params = request.query_params
    if any(len(params.getlist(name)) > 1 for name in params):
        raise BadRegisterQuery("Each filter can be chosen only once.")
    page_raw = params.get("page", "1").strip() or "1"
    if not (page_raw.isascii() and page_raw.isdigit()) or not 1 <= int(page_raw) <= MAX_PAGE:
        raise BadRegisterQuery("The page number must be a whole number, like 2.")
    return RegisterQuery(
        organisation=_text(params.get("organisation", ""), "organisation"),
        purpose=_choice(params.get("purpose", ""), policy.PURPOSES, "a purpose"),
        recipient=_choice(params.get("recipient", ""), policy.RECIPIENTS, "a kind of recipient"),
        project=_text(params.get("project", ""), "project"),
        sort=_choice(params.get("sort", "date"), SORTS, "how to sort") or "date",
        order=_choice(params.get("order", "desc"), ORDERS, "an order") or "desc",
        page=int(page_raw),
    )


def select(rows: list[reg.RegisterRow], query: RegisterQuery) -> list[reg.RegisterRow]:
    """The rows ``query`` asks for, in its order (ties: the later log entry first when the
    order is descending, the earlier when ascending)."""
    where = reg.RegisterFilter(
        purpose=query.purpose or None, recipient_kind=query.recipient or None
    )
    organisation = query.organisation.lower()
    project = query.project.lower()
    kept = [
        r
        for r in reg.select_rows(rows, where)
        if (not organisation or r.organisation.lower() == organisation)
        and (
            not project
            or project in r.project_id.lower()
            or project in (r.project_title or "").lower()
        )
    ]

    def key(r: reg.RegisterRow) -> Any:
        if query.sort == "patients":
            return r.patients
        if query.sort == "project":
            return (r.project_title or r.project_id).lower()
        return r.date

    kept.sort(key=lambda r: r.index, reverse=query.order == "desc")
    kept.sort(key=key, reverse=query.order == "desc")
    return kept


@dataclass(frozen=True)
class _Seen:
    """The log entries the register is folded from, read up to ``size`` (never changed in
    place, so concurrent requests can share it)."""

    size: int
    entries: tuple[tuple[int, bytes], ...]


def _relevant(ledger: Ledger, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Entries ``start <= index < end`` the register is made from. A leaf that is not a
    Confide entry (a raw test leaf) cannot be a release, so it is passed over."""
    for first in range(start, end, reg.PAGE):
        for index, raw in ledger.entries(first, min(first + reg.PAGE, end)):
            try:
                kind = decode(index, raw).kind
            except EntryRejected:
                continue
            if kind in REGISTER_KINDS:
                yield index, raw


def snapshot(request: Request) -> tuple[Checkpoint, list[reg.RegisterRow]]:
    """The signed checkpoint and every register row it covers. The log only grows, so each
    request reads just the entries appended since the last one."""
    state = web_state(request)
    ledger: Ledger = state.ledger
    head = ledger.checkpoint()
    seen: _Seen | None = state.extra.get(_CACHE)
    if seen is None or seen.size > head.size:
        seen = _Seen(0, ())
    if seen.size < head.size:
        seen = _Seen(head.size, seen.entries + tuple(_relevant(ledger, seen.size, head.size)))
        state.extra[_CACHE] = seen
    return head, reg.rows_from_entries(seen.entries)


def _reason(row: reg.RegisterRow) -> str:
    text = row.opt_outs_reason or ""
    for prefix in ("opt-outs applied:", "opt-outs not applied:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :].strip()
    return text


def organisation_names(request: Request) -> dict[str, str]:
    """Registered organisations' names by short name, when this app holds the access party
    (the log records short names; people read names)."""
    from confide.web.pages.staff_context import STAFF

    staff = web_state(request).extra.get(STAFF)
    if staff is None:
        return {}
    return {org.slug: org.name for org in staff.access.organisations()}


def row_view(
    row: reg.RegisterRow, size: int, names: dict[str, str] | None = None
) -> dict[str, Any]:
    """What the page shows of one row, with links to its entry and inclusion proof."""
    return {
        "anchor": f"release-{row.release_id}",
        "release_id": row.release_id,
        "date": labels.nice_date(row.date),
        "project": row.project_title or row.project_id,
        "project_id": row.project_id,
        "organisation": (names or {}).get(row.organisation, row.organisation),
        "purpose": labels.label(labels.PURPOSES, row.purpose),
        "recipient": labels.label(labels.RECIPIENTS, row.recipient_kind),
        "legal_basis": labels.label(labels.LEGAL_BASES, row.legal_basis),
        "data_form": labels.label(labels.DATA_FORMS, row.data_form),
        "datasets": ", ".join(labels.label(labels.DATASETS, d) for d in row.datasets),
        "patients": row.patients,
        "opt_outs": "Yes" if row.opt_outs_applied else "No",
        "opt_outs_reason": _reason(row),
        "index": row.index,
        "leaf_hash": row.leaf_hash,
        "entry_href": f"/api/ledger/entries?start={row.index}&end={row.index + 1}",
        "proof_href": "/api/ledger/proof/inclusion?"
        + urlencode({"leaf_hash": row.leaf_hash, "size": size}),
        "deletion_notices": list(row.deletion_notices),
    }


def _problem(request: Request, exc: InvalidInput) -> Response:
    return render(
        request,
        "problem.html",
        {
            "title": "There is a problem with the register's web address",
            "message": exc.message + " Nothing was changed.",
            "hint": "Use the filters on the register page to choose what to see.",
            "next_href": "/register",
            "next_text": "Go to the release register",
        },
        status_code=400,
    )


def _options(values: dict[str, str], chosen: str, everything: str) -> list[dict[str, Any]]:
    return [{"value": "", "text": everything, "selected": not chosen}] + [
        {"value": k, "text": v, "selected": k == chosen} for k, v in values.items()
    ]


@router.get("/register")
def register_page(request: Request) -> Response:
    """The register as a page: filters, sort, one page of rows, downloads, how to check."""
    try:
        query = parse_query(request)
    except BadRegisterQuery as exc:
        return _problem(request, exc)
    head, rows = snapshot(request)
    chosen = select(rows, query)
    pages = max(1, math.ceil(len(chosen) / PAGE_SIZE))
    page = min(query.page, pages)
    shown = chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    organisations = sorted({r.organisation for r in rows} | ({query.organisation} - {""}))
    names = organisation_names(request)
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "register.html",
        {
            "nav": "register",
            "query": query,
            "rows": [row_view(r, head.size, names) for r in shown],
            "total": len(chosen),
            "everything": len(rows),
            "first": (page - 1) * PAGE_SIZE + 1,
            "last": (page - 1) * PAGE_SIZE + len(shown),
            "previous_href": query.link(page=page - 1) if page > 1 else None,
            "next_href": query.link(page=page + 1) if page < pages else None,
            "page": page,
            "pages": pages,
            "csv_href": query.link("/register.csv", page=1),
            "json_href": query.link("/register.json", page=1),
            "organisations": [
                {"value": "", "text": "All organisations", "selected": not query.organisation}
            ]
            + [
                {
                    "value": o,
                    "text": names.get(o, o),
                    "selected": o.lower() == query.organisation.lower(),
                }
                for o in organisations
            ],
            "purposes": _options(
                {p: labels.label(labels.PURPOSES, p) for p in policy.PURPOSES},
                query.purpose,
                "All purposes",
            ),
            "recipients": _options(
                {r: labels.label(labels.RECIPIENTS, r) for r in policy.RECIPIENTS},
                query.recipient,
                "All recipients",
            ),
            "sorts": _options(SORTS, query.sort, "")[1:],
            "sort_label": SORTS[query.sort],
            "orders": _options(ORDERS, query.order, "")[1:],
            "size": head.size,
            "root": head.root.hex(),
            "api": f"{base}/api/ledger",
            "verifier_key": web_state(request).ledger.verifier_key(),
        },
    )


def _download(request: Request, fmt: str) -> Response:
    try:
        query = parse_query(request)
    except BadRegisterQuery as exc:
        return _problem(request, exc)
    head, rows = snapshot(request)
    chosen = select(rows, query)
    if fmt == "csv":
        body, media = reg.to_csv(chosen), "text/csv; charset=utf-8"
    else:
        body, media = reg.to_json(chosen, head), "application/json"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="confide-release-register.{fmt}"'},
    )


@router.get("/register.csv")
def register_csv(request: Request) -> Response:
    """The same rows as the page (every page of them) as CSV open data."""
    return _download(request, "csv")


@router.get("/register.json")
def register_json(request: Request) -> Response:
    """The same rows as JSON, with the signed checkpoint they were read at."""
    return _download(request, "json")
