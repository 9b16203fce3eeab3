"""The demo's credentials: each demo project's API client, kept owner-only in the access
party's folder so `confide query run --project demo-research` works in a demo home without a
token. Real installations never have this file: clients get their own secrets once."""

from __future__ import annotations

from typing import Any

import orjson

from confide.common.home import Home
from confide.common.secrets import write_secret

FILE = "demo-credentials.json"


def save(home: Home, seeded: dict[str, Any]) -> None:
    """Keep ``client_id``/``client_secret`` of each demo project (from ``seed_demo``)."""
    people = seeded.get("credentials", {})
    keep = {
        slug: {
            "client_id": people[item["credentials"]]["client_id"],
            "client_secret": people[item["credentials"]]["client_secret"],
            "organisation": item.get("organisation"),
        }
        for slug, item in seeded.get("projects", {}).items()
        if item.get("credentials") in people
    }
    for role, item in people.items():
        keep[f"role:{role}"] = {
            "client_id": item["client_id"],
            "client_secret": item["client_secret"],
            "organisation": item.get("organisation"),
        }
    write_secret(home.party("access") / FILE, orjson.dumps(keep, option=orjson.OPT_INDENT_2))


def load(home: Home) -> dict[str, Any]:
    path = home.party("access") / FILE
    return orjson.loads(path.read_bytes()) if path.exists() else {}
