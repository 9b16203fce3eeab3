"""The release register names organisations as people know them, not by their short names."""

from __future__ import annotations

import html5lib
from fastapi.testclient import TestClient
from web_world import build_world


def test_the_register_shows_organisation_names(tmp_path) -> None:
    world = build_world(tmp_path / "home", patients=60)
    try:
        assert world.query("demo-research").status == "released"
        with TestClient(world.app(), base_url="https://testserver") as http:
            page = http.get("/register")
        doc = html5lib.HTMLParser(namespaceHTMLElements=False).parse(page.text)
        cells = [" ".join("".join(td.itertext()).split()) for td in doc.iter("td")]
        assert "Demo University" in cells and "demo-university" not in cells
        options = {o.get("value"): (o.text or "").strip() for o in doc.iter("option")}
        assert options.get("demo-university") == "Demo University"
    finally:
        world.close()
