"""Postcode normalisation: any spacing or case gives one standard form; districts are coarser."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from confide.common import postcode

area = st.text(alphabet="ABCDEFGHIJKLMNOPRSTUWYZ", min_size=1, max_size=2)
district_tail = st.one_of(st.just(""), st.sampled_from(list("0123456789ABEHJKMNPRVWXY")))
inward_letters = st.text(alphabet="ABDEFGHJLNPQRSTUWXYZ", min_size=2, max_size=2)


@st.composite
def postcodes(draw) -> str:
    outward = draw(area) + str(draw(st.integers(0, 9))) + draw(district_tail)
    inward = str(draw(st.integers(0, 9))) + draw(inward_letters)
    return f"{outward} {inward}"


@given(postcodes(), st.sampled_from(["", " ", "  "]), st.booleans())
def test_spacing_and_case_do_not_matter(code: str, gap: str, lower: bool) -> None:
    outward, inward = code.split(" ")
    messy = f" {outward}{gap}{inward} "
    messy = messy.lower() if lower else messy
    assert postcode.normalise(messy) == code


@given(postcodes())
def test_normalising_is_idempotent_and_district_is_the_outward_code(code: str) -> None:
    once = postcode.normalise(code)
    assert once is not None and postcode.normalise(once) == once
    assert postcode.district(code) == code.split(" ")[0]
    assert postcode.sector(code) == code[: code.index(" ") + 2]


@given(st.text(alphabet="!@#$%^&*()_+=-", max_size=10))
def test_junk_is_not_a_postcode(raw: str) -> None:
    assert postcode.normalise(raw) is None


def test_real_examples() -> None:
    assert postcode.normalise("ls14ap") == "LS1 4AP"
    assert postcode.normalise("SW1A 1AA") == "SW1A 1AA"
    assert postcode.normalise("LS1 4CP") is None  # C is never used in the inward code
    assert postcode.district("EC1A 1BB") == "EC1A"
