"""Patient-facing pages in plain English: a reading age of 9 or under (the NHS content
standard), measured with textstat's Flesch-Kincaid grade (UK reading age = US grade + 5).

Each block of text (heading, paragraph, list item, label, table cell, button) counts as a
sentence, as a reader meets it; code and SQL are left out.
"""

from __future__ import annotations

import html5lib
import pytest
import textstat
from fastapi.testclient import TestClient
from web_seed import build_home, sign_in

MAX_READING_AGE = 9
BLOCKS = {
    "h1", "h2", "h3", "h4", "p", "li", "label", "legend", "dt", "dd", "td", "th",
    "summary", "button", "caption",
}  # fmt: skip
PUBLIC = ["/", "/identity", "/proxy", "/gp-letter", "/about"]
SIGNED_IN = ["/your-choices", "/change", "/your-data-use"]


def reading_age(text: str) -> float:
    return float(textstat.flesch_kincaid_grade(text)) + 5


def main_text(html: str) -> str:
    """The page's main content as a reader meets it: one sentence per block."""
    main = html5lib.HTMLParser(namespaceHTMLElements=False).parse(html).find(".//main")
    sentences: list[str] = []

    def walk(element) -> None:
        if element.tag in ("pre", "code", "script", "style", "template"):
            return
        if element.tag in BLOCKS:
            text = " ".join(" ".join(element.itertext()).split())
            if text:
                sentences.append(text if text[-1] in ".?!:" else text + ".")
            return
        for child in element:
            walk(child)

    walk(main)
    return " ".join(sentences)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, str]:
    seeded = build_home(tmp_path_factory.mktemp("read") / "home")
    with TestClient(seeded.app(demo=True), base_url="https://testserver") as http:
        found = {path: http.get(path).text for path in PUBLIC}
        sign_in(http, seeded, seeded.adult)
        found.update({path: http.get(path).text for path in SIGNED_IN})
    seeded.close()
    return found


@pytest.mark.parametrize("path", PUBLIC + SIGNED_IN)
def test_patient_pages_read_at_age_nine_or_under(pages, path) -> None:
    text = main_text(pages[path])
    assert len(text.split()) > 30, "too little text to measure: is this the right page?"
    age = reading_age(text)
    assert age <= MAX_READING_AGE, f"{path}: reading age {age:.1f}"


def test_the_measure_tells_plain_from_dense_english() -> None:
    plain = "You can say no at any time. Your choice counts from the next question. " * 5
    dense = (
        "Notwithstanding the aforementioned considerations, pseudonymised longitudinal "
        "observational datasets facilitate epidemiological investigations. "
    ) * 5
    assert reading_age(plain) <= MAX_READING_AGE < reading_age(dense)
