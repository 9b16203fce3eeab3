"""The policy table: every row does what it says, the docs carry it exactly, key promises hold."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confide.choices import policy
from confide.choices.model import Choice, Choices
from confide.common.errors import InvalidInput

DOC = Path(__file__).resolve().parent.parent / "docs" / "choices-policy.md"
CONTEXTS = list(
    itertools.product(policy.PURPOSES, policy.RECIPIENTS, policy.LEGAL_BASES, policy.OUTPUT_FORMS)
)


def _rows_for(preset: str, choice: str) -> list[policy.Rule]:
    return [r for r in policy.RULES if r.preset in ("*", preset) and r.choice == choice]


def _deciding_context(rule: policy.Rule, preset: str):
    """A context where ``rule`` is the first matching row for its choice (or a refusal)."""
    for ctx in CONTEXTS:
        if not rule.matches(*ctx):
            continue
        if rule.effect == "refuse":
            return ctx
        if any(r.effect == "refuse" and r.matches(*ctx) for r in policy.RULES):
            continue
        first = next(r for r in _rows_for(preset, rule.choice) if r.matches(*ctx))
        if first is rule:
            return ctx
    return None


@pytest.mark.parametrize("index", range(len(policy.RULES)))
def test_every_rule_row_decides_where_it_applies(index: int) -> None:
    rule = policy.RULES[index]
    presets = list(policy.PRESETS) if rule.preset == "*" else [rule.preset]
    for preset in presets:
        ctx = _deciding_context(rule, preset)
        assert ctx is not None, f"row {index + 1} can never decide anything (shadowed)"
        terms = policy.terms(*ctx, preset=preset)
        if rule.effect == "refuse":
            assert terms.refused == rule.reason
            decision = policy.decide(Choices(), *ctx, preset=preset)
            assert not decision.include and decision.refused
            continue
        choice = Choice(rule.choice)
        holder = Choices(**{choice.value: True})
        decision = policy.decide(holder, *ctx, preset=preset)
        if rule.effect == "exclude":
            assert terms.excluding[choice] == rule.reason
            assert not decision.include and decision.reason == rule.reason
        else:
            assert terms.exempt[choice] == rule.reason
            assert decision.include and not decision.opt_outs_applied
            assert rule.reason in (decision.exemption or "")


def test_docs_table_matches_the_rules_exactly() -> None:
    text = DOC.read_text()
    begin, end = text.index(policy.DOC_BEGIN), text.index(policy.DOC_END)
    table = text[begin + len(policy.DOC_BEGIN) : end].strip()
    assert table == policy.rules_markdown()
    for preset in policy.PRESETS:
        assert f"**{preset}**" in text


@pytest.mark.parametrize(
    ("choice", "purpose", "recipient", "basis", "form", "preset", "include"),
    [
        # strict: opt-out means out, aggregates included.
        ("share_nothing", "planning", "nhs", "public_task", "aggregate", "strict", False),
        ("no_research", "research", "academic", "section_251", "dp_aggregate", "strict", False),
        ("no_research", "research", "academic", "consent", "record_level", "strict", False),
        ("no_research", "planning", "nhs", "public_task", "record_level", "strict", True),
        ("no_planning", "commissioning", "nhs", "public_task", "aggregate", "strict", False),
        ("no_planning", "public_health", "nhs", "copi_reg3", "aggregate", "strict", False),
        ("no_planning", "research", "academic", "section_251", "record_level", "strict", True),
        ("no_commercial", "research", "commercial", "section_251", "aggregate", "strict", False),
        ("no_commercial", "research", "charity", "section_251", "record_level", "strict", True),
        # ndoo_2018: national opt-out exemptions; type 1 still applies.
        ("no_research", "research", "academic", "section_251", "aggregate", "ndoo_2018", True),
        ("no_research", "research", "academic", "consent", "record_level", "ndoo_2018", True),
        ("no_planning", "public_health", "nhs", "copi_reg3", "record_level", "ndoo_2018", True),
        ("no_research", "research", "academic", "section_251", "record_level", "ndoo_2018", False),
        ("no_planning", "planning", "nhs", "public_task", "record_level", "ndoo_2018", False),
        ("share_nothing", "research", "academic", "consent", "aggregate", "ndoo_2018", False),
        ("share_nothing", "public_health", "nhs", "copi_reg3", "aggregate", "ndoo_2018", False),
    ],
)
def test_expected_outcomes(choice, purpose, recipient, basis, form, preset, include) -> None:
    decision = policy.decide(Choices(**{choice: True}), purpose, recipient, basis, form, preset)
    assert decision.include is include
    assert decision.reason


def test_exemptions_show_only_where_the_choice_would_apply() -> None:
    # Planning under ndoo_2018 with an aggregate: no_planning is exempt (shows), but the
    # research opt-out never concerned planning, so it must not appear as an exemption.
    terms = policy.terms("planning", "nhs", "public_task", "aggregate", "ndoo_2018")
    assert set(terms.exempt) == {Choice.NO_PLANNING}
    assert not terms.opt_outs_applied
    strict = policy.terms("planning", "nhs", "public_task", "aggregate", "strict")
    assert strict.opt_outs_applied and strict.exemption is None


@given(
    held=st.sets(st.sampled_from(list(Choice))),
    ctx=st.sampled_from(CONTEXTS),
    preset=st.sampled_from(list(policy.PRESETS)),
)
def test_invariants(held, ctx, preset) -> None:
    choices = Choices(**{c.value: True for c in held})
    decision = policy.decide(choices, *ctx, preset=preset)
    if ctx[0] in ("insurance", "marketing"):
        assert not decision.include and decision.refused
    elif Choice.SHARE_NOTHING in held:
        assert not decision.include
    elif not held:
        assert decision.include and decision.reason == "no opt-out recorded"
    if preset == "strict" and ctx[0] not in ("insurance", "marketing"):
        assert decision.opt_outs_applied and decision.exemption is None
    # Holding more choices can only ever exclude more.
    if not decision.include:
        more = Choices(**{c.value: True for c in Choice})
        assert not policy.decide(more, *ctx, preset=preset).include


@pytest.mark.parametrize(
    "args",
    [
        ("astrology", "nhs"),
        ("research", "bank"),
        ("research", "nhs", "vibes"),
        ("research", "nhs", "public_task", "spreadsheet"),
        ("research", "nhs", "public_task", "aggregate", "lenient"),
    ],
)
def test_unknown_vocabulary_is_a_clear_error(args) -> None:
    with pytest.raises(InvalidInput, match="Unknown"):
        policy.decide(Choices(), *args)
