"""Public pages: what Confide does, the transparency log's checkpoint (with how well records
are linked), opt-out statistics.

Statistics are the choices registry's published figures only (cells of 7 or fewer redacted,
others rounded to 5): the true counts never reach a page.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from fastapi import APIRouter, Request
from fastapi.responses import Response

from confide.choices import statistics
from confide.choices.model import Choice
from confide.common.errors import InvalidInput
from confide.ledger.api import MAX_PAGE as LEDGER_PAGE
from confide.ledger.api import cosigners
from confide.web.chart import Series, line_chart
from confide.web.context import web_state
from confide.web.rendering import render

router = APIRouter(include_in_schema=False)

SHORT = {
    Choice.SHARE_NOTHING.value: "Share nothing",
    Choice.NO_RESEARCH.value: "No research",
    Choice.NO_PLANNING.value: "No planning",
    Choice.NO_COMMERCIAL.value: "No commercial use",
}
GROUPS = {"practice": "GP practice", "area": "Postcode district"}
LINKAGE_QUALITY = "linkage_quality"
LINKAGE_MIN_RECORDS = 100  # smaller sources are left out of the published linkage figures
ORDER = [c.value for c in Choice]


@router.get("/about")
def about(request: Request) -> Response:
    return render(request, "about.html", {"nav": "about"})


ENTRIES_PAGE = LEDGER_PAGE  # the most entries one request returns
SHOWN_PAGES = 2


@router.get("/transparency")
def transparency(request: Request) -> Response:
    """The latest signed checkpoint, the signing key, and how to check them independently."""
    ledger = web_state(request).ledger
    signed = ledger.checkpoint()
    base = str(request.base_url).rstrip("/")
    witnesses = ledger.witness_keys()
    return render(
        request,
        "transparency.html",
        {
            "nav": "transparency",
            "linkage": _linkage(request),
            "linkage_min": LINKAGE_MIN_RECORDS,
            "size": signed.size,
            "root": signed.root.hex(),
            "checkpoint": signed.text,
            "verifier_key": ledger.verifier_key(),
            "cosigned_by": cosigners(signed.text),
            "witnesses": witnesses,
            "api": f"{base}/api/ledger",
            "page_size": ENTRIES_PAGE,
            "entry_pages": [
                (first, min(first + ENTRIES_PAGE, signed.size))
                for first in range(0, signed.size, ENTRIES_PAGE)
            ][:SHOWN_PAGES],
            "more_pages": signed.size > ENTRIES_PAGE * SHOWN_PAGES,
        },
    )


def _linkage(request: Request) -> list[dict[str, str]]:
    """Per source: records (rounded to 5), linkage rate and estimated false-match rate."""
    source = web_state(request).extra.get(LINKAGE_QUALITY)
    if source is None:
        return []
    return [
        {
            "source": q["source"],
            "records": f"{5 * round(q['submitted'] / 5):,}",
            "rate": f"{q['linkage_rate']:.1%}",
            "false": f"{q['estimated_false_match_rate']:.2%}",
        }
        for q in source()
        if q["submitted"] >= LINKAGE_MIN_RECORDS and q["linkage_rate"] is not None
        and q["estimated_false_match_rate"] is not None
    ]  # fmt: skip


def _grouping(request: Request) -> str:
    by = request.query_params.get("by", "practice")
    if by not in GROUPS:
        raise InvalidInput(
            "The statistics can be grouped by GP practice or by postcode district only.",
            hint="Choose one of the groupings on the statistics page.",
        )
    return by


SHOWN_MONTHS = 24


def shown_months(months: list[str], totals: dict[str, dict[str, int | None]]) -> list[str]:
    """The months worth a row: from the first with a published (unhidden) number, the latest
    24 at most. The CSV keeps every month."""
    first = next((i for i, m in enumerate(months) if any(totals[m].values())), len(months))
    return months[first:][-SHOWN_MONTHS:]


@router.get("/statistics")
def stats_page(request: Request) -> Response:
    """Totals over time (chart and table) and the latest month by place (table)."""
    by = _grouping(request)
    rows = web_state(request).registry.publishable_statistics(by)
    totals: dict[str, dict[str, int | None]] = defaultdict(dict)
    places: dict[str, dict[str, int | None]] = defaultdict(dict)
    every_month = sorted({r["month"] for r in rows})
    latest = every_month[-1] if every_month else None
    for r in rows:
        if r[by] == statistics.TOTAL:
            totals[r["month"]][r["choice"]] = r["people"]
        elif r["month"] == latest:
            places[r[by]][r["choice"]] = r["people"]
    months = shown_months(every_month, totals)
    series = [Series(SHORT[c], [totals[m].get(c) or 0 for m in months]) for c in ORDER]
    chart = line_chart(
        "People holding each choice, by month",
        "Line chart of the published number of people holding each choice at the end of each "
        "month. The same numbers are in the table below.",
        months,
        series,
    )
    return render(
        request,
        "statistics.html",
        {
            "nav": "statistics",
            "by": by,
            "groups": GROUPS,
            "group_name": GROUPS[by],
            "choices": [(c, SHORT[c]) for c in ORDER],
            "months": months,
            "earlier_months": len(every_month) - len(months),
            "totals": totals,
            "latest": latest,
            "places": sorted(places.items()),
            "chart": chart,
            "redact_at": statistics.REDACT_AT_OR_BELOW,
            "round_to": statistics.ROUND_TO,
        },
    )


@router.get("/statistics.csv")
def stats_csv(request: Request) -> Response:
    """The same published figures as open data (CSV)."""
    by = _grouping(request)
    rows = web_state(request).registry.publishable_statistics(by)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["month", by, "choice", "people", "redacted"])
    for r in rows:
        writer.writerow(
            [
                r["month"],
                r[by],
                r["choice"],
                "" if r["people"] is None else r["people"],
                "yes" if r["redacted"] else "no",
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="confide-opt-outs-by-{by}.csv"'},
    )
