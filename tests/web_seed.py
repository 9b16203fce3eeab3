"""A small Confide home for the web tests: enrolled people, some choices, a ledger with entries.

Built directly through the parties' public interfaces (no pipeline run), so the web tests stay
fast. ``people`` holds an adult, a child under 13 and a child of 15 first, then adults whose
no-commercial choices make the statistics show unsuppressed numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from confide.choices.identity import IdentityConfig, IdentityService
from confide.choices.model import Actor, ChangeRequest, Channel
from confide.choices.registry import ChoicesRegistry
from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers
from confide.ledger.log import Ledger
from confide.web.app import create_app

PRACTICES = ("A81001", "B82002")
POSTCODES = ("LS2 7UE", "M1 1AE", "B1 1BB", "NE1 4ST")  # not the forms' example


@dataclass(frozen=True)
class Person:
    nhs_number: str
    birth_date: date
    postcode: str
    practice: str
    contact: str

    def form(self) -> dict[str, str]:
        """The identity form as a person would fill it in (spaces, lower case)."""
        n = self.nhs_number
        return {
            "nhs_number": f"{n[:3]} {n[3:6]} {n[6:]}",
            "birth[day]": str(self.birth_date.day),
            "birth[month]": str(self.birth_date.month),
            "birth[year]": str(self.birth_date.year),
            "postcode": self.postcode.lower(),
        }


@dataclass
class SeededHome:
    home: Home
    registry: ChoicesRegistry
    identity: IdentityService
    ledger: Ledger
    people: list[Person] = field(default_factory=list)

    @property
    def adult(self) -> Person:
        return self.people[0]

    @property
    def young_child(self) -> Person:
        return self.people[1]

    @property
    def older_child(self) -> Person:
        return self.people[2]

    @property
    def outbox(self) -> Path:
        return self.home.root / "outbox"

    def messages(self) -> list[dict]:
        if not self.outbox.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.outbox.glob("*.json"))]

    def latest_code(self) -> str:
        return next(m["code"] for m in reversed(self.messages()) if "code" in m)

    def app(self, **options):
        return create_app(
            self.home,
            registry=self.registry,
            identity=self.identity,
            ledger=self.ledger,
            **options,
        )

    def close(self) -> None:
        self.registry.close()
        self.ledger.close()


def _birth(years_ago: int, today: date) -> date:
    return date(today.year - years_ago, 1, 15)


def build_home(
    root: Path, *, people: int = 30, seed: int = 7, config: IdentityConfig | None = None
) -> SeededHome:
    """A home with ``people`` enrolled (at least 3) and a few recorded choices."""
    home = Home.at(root)
    registry = ChoicesRegistry.open(home)
    identity = IdentityService.open(
        registry, home.root, config=config or IdentityConfig(min_seconds=0)
    )
    ledger = Ledger.open(home)
    rng = np.random.default_rng(seed)
    numbers = [str(n) for n in generate_test_numbers(max(people, 3), rng)]
    today = datetime.now(UTC).date()
    ages = [44, 8, 15] + [int(a) for a in rng.integers(20, 90, size=len(numbers) - 3)]
    folk = [
        Person(
            nhs_number=n,
            birth_date=_birth(age, today),
            postcode=POSTCODES[i % len(POSTCODES)],
            practice=PRACTICES[i % len(PRACTICES)],
            contact=f"person{i}@example.org",
        )
        for i, (n, age) in enumerate(zip(numbers, ages, strict=True))
    ]
    registry.enrol_demographics(
        [(p.nhs_number, p.birth_date, p.postcode, p.practice, None, p.contact) for p in folk]
    )
    if len(folk) > 3:  # (bulk_set with nothing to do fails in the registry today)
        registry.bulk_set(
            ChangeRequest(p.nhs_number, {"no_commercial": True}, Channel.ONLINE, Actor.SELF)
            for p in folk[3:]
        )
    ledger.append_raw([b'{"kind":"seed","v":1}', b'{"kind":"seed","v":1,"n":2}'])
    return SeededHome(home, registry, identity, ledger, folk)


# --- in-process HTTP helpers --------------------------------------------------------------------

CSRF_PATTERN = 'name="csrf_token" value="'


def csrf_of(html: str) -> str:
    """The CSRF token in a rendered form."""
    start = html.index(CSRF_PATTERN) + len(CSRF_PATTERN)
    return html[start : html.index('"', start)]


def sign_in(http, seeded: SeededHome, person: Person, *, proxy: bool = False) -> str:
    """Walk the identity check as ``person`` (or as their parent); returns the CSRF token."""
    page = http.get("/proxy" if proxy else "/identity")
    token = csrf_of(page.text)
    if proxy:
        assert http.post("/proxy", data={"csrf_token": token}).status_code == 200
    started = http.post("/identity", data={"csrf_token": token, **person.form()})
    assert started.status_code == 200 and "Enter your code" in started.text
    verified = http.post("/code", data={"csrf_token": token, "code": seeded.latest_code()})
    assert verified.status_code == 200, verified.text
    return csrf_of(verified.text)  # a new token: it is rotated at sign-in
