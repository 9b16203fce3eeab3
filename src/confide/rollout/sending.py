"""Sending a practice's notices: letters as one printable batch, emails and NHS App messages
through the notifier, every notice recorded in the practice's register as sent.

The recipient list is the practice's own (CSV: ``nhs_number,name,address,email,channel``;
address lines separated by ``;``). Rows that cannot be used are reported by row number, never
by content, and nothing is recorded for them.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.common.nhs_number import is_valid
from confide.common.secrets import write_secret
from confide.rollout import letters, wording
from confide.rollout.letters import Recipient
from confide.rollout.model import Channel
from confide.rollout.notices import NoticeRegister
from confide.rollout.notify import Notifier

TEMPLATE_ID = "confide-fair-processing-notice"


@dataclass
class Sent:
    counts: Counter[str] = field(default_factory=Counter)
    batch: Path | None = None
    unusable_rows: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "sent": dict(self.counts),
            "batch": str(self.batch) if self.batch else None,
            "unusable_rows": self.unusable_rows,
        }


def read_recipients(path: Path) -> tuple[list[Recipient], list[int]]:
    """The usable recipients and the row numbers (from 2, after the header) of the others."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        raise InvalidInput("The recipient list cannot be read as a UTF-8 CSV file.") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "nhs_number" not in reader.fieldnames:
        raise InvalidInput(
            "The recipient list needs a header with nhs_number, name, address (and optionally "
            "email, channel)."
        )
    people: list[Recipient] = []
    bad: list[int] = []
    for number, row in enumerate(reader, start=2):
        nhs = (row.get("nhs_number") or "").replace(" ", "")
        channel = (row.get("channel") or "letter").strip() or "letter"
        email = (row.get("email") or "").strip() or None
        if not is_valid(nhs) or channel not in Channel.__members__.values():
            bad.append(number)
            continue
        if channel == Channel.EMAIL and not email:
            bad.append(number)
            continue
        address = tuple(p.strip() for p in (row.get("address") or "").split(";") if p.strip())
        name = (row.get("name") or "").strip() or "The patient"
        people.append(Recipient(nhs, name, address, email, channel))
    return people, bad


def send(
    home: Home,
    ods: str,
    people: list[Recipient],
    notifier: Notifier,
    *,
    practice_name: str,
    weeks: int,
    on: date | None = None,
) -> Sent:
    """Tell everyone in ``people`` by their channel and record each notice as sent."""
    day = on or date.today()
    out = Sent()
    by_channel: dict[str, list[Recipient]] = {}
    for who in people:
        by_channel.setdefault(who.channel, []).append(who)
    text = "\n\n".join(wording.paragraphs(practice_name, day, weeks))
    for who in by_channel.get(Channel.EMAIL, []):
        notifier.send_email_notification(
            who.email or "", TEMPLATE_ID, {"body": text}, reference=f"{ods}-{day.isoformat()}"
        )
    for who in by_channel.get(Channel.NHS_APP, []):
        notifier.send_app_message(
            who.nhs_number, TEMPLATE_ID, {"body": text}, reference=f"{ods}-{day.isoformat()}"
        )
    post = by_channel.get(Channel.LETTER, [])
    if post:
        folder = home.party("practice") / ods / "notices"
        folder.mkdir(parents=True, exist_ok=True)
        batch = folder / f"letters-{day.isoformat()}-{len(list(folder.glob('*.pdf'))) + 1}.pdf"
        write_secret(batch, letters.batch_pdf(post, practice_name, day, weeks))
        out.batch = batch
    with NoticeRegister(home) as register:
        for channel, group in by_channel.items():
            recorded = register.sent(ods, [w.nhs_number for w in group], Channel(channel), day)
            out.counts[channel] += recorded["sent"]
    return out
