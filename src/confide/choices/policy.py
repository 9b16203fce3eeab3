"""THE policy: whether a person's data may be used for a project, and why.

The rules are data (:data:`RULES`, one row each); :func:`decide` only interprets them, and
``docs/choices-policy.md`` is generated from the same rows (:func:`rules_markdown`), so the
documentation cannot drift from what runs.

How the rows are read, for a project (purpose, recipient kind, legal basis, output form) under a
preset:

1. A ``refuse`` row that matches refuses the whole project: nobody is included.
2. For each choice, the first matching row for that choice decides what the choice does to this
   project: ``exclude`` (holders are left out) or ``exempt`` (holders are included, and the
   project is marked "opt-outs applied: no" with the reason). No matching row: the choice does
   not concern this use.
3. A person is included unless they hold a choice that excludes.

Rows with preset ``*`` apply under every preset and come first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from confide.choices.model import Choice, Choices
from confide.common.errors import InvalidInput

PURPOSES = (
    "research",
    "planning",
    "commissioning",
    "public_health",
    "insurance",
    "marketing",
)
RECIPIENTS = ("nhs", "academic", "charity", "commercial")
LEGAL_BASES = ("public_task", "consent", "copi_reg3", "legitimate_interests", "section_251")
OUTPUT_FORMS = ("aggregate", "dp_aggregate", "record_level")
PRESETS = {
    "strict": "Opt-out means out: every choice applies to every matching use, aggregates "
    "included. Confide's default.",
    "ndoo_2018": "The national data opt-out operational policy (2018): anonymised aggregate "
    "outputs, consent for a specific study and COPI regulation 3 uses are exempt from the "
    "national opt-out (and from no_commercial); type 1 (share nothing) still applies.",
}
ANY = "*"
_PLANNING = ("planning", "commissioning", "public_health")


@dataclass(frozen=True)
class Rule:
    """One row of the policy table. ``("*",)`` in a field matches any value."""

    preset: str
    choice: str  # a Choice value, or "*" for project-wide (refuse) rows
    effect: str  # refuse | exclude | exempt
    reason: str
    purposes: tuple[str, ...] = (ANY,)
    recipients: tuple[str, ...] = (ANY,)
    legal_bases: tuple[str, ...] = (ANY,)
    output_forms: tuple[str, ...] = (ANY,)

    def matches(self, purpose: str, recipient: str, basis: str, form: str) -> bool:
        return all(
            ANY in allowed or value in allowed
            for allowed, value in (
                (self.purposes, purpose),
                (self.recipients, recipient),
                (self.legal_bases, basis),
                (self.output_forms, form),
            )
        )


def _exemptions(
    choice: str, purposes: tuple[str, ...] = (ANY,), recipients: tuple[str, ...] = (ANY,)
) -> list[Rule]:
    """The 2018 exemptions, limited to the uses the choice covers (so they show only there)."""
    scope = {"purposes": purposes, "recipients": recipients}
    return [
        Rule(
            "ndoo_2018",
            choice,
            "exempt",
            "anonymised aggregate output (national opt-out policy 2018)",
            output_forms=("aggregate", "dp_aggregate"),
            **scope,
        ),
        Rule(
            "ndoo_2018",
            choice,
            "exempt",
            "the person's consent to this specific study (national opt-out policy 2018)",
            legal_bases=("consent",),
            **scope,
        ),
        Rule(
            "ndoo_2018",
            choice,
            "exempt",
            "COPI regulation 3: communicable disease and risks to public health "
            "(national opt-out policy 2018)",
            legal_bases=("copi_reg3",),
            **scope,
        ),
    ]


RULES: tuple[Rule, ...] = (
    Rule("*", ANY, "refuse", "insurance is never a permitted use", purposes=("insurance",)),
    Rule("*", ANY, "refuse", "marketing is never a permitted use", purposes=("marketing",)),
    Rule("*", "share_nothing", "exclude", "the person chose to share nothing"),
    # strict: opt-out means out, aggregates included.
    Rule("strict", "no_research", "exclude", "the person opted out of research", ("research",)),
    Rule("strict", "no_planning", "exclude", "the person opted out of planning", _PLANNING),
    Rule(
        "strict",
        "no_commercial",
        "exclude",
        "the person opted out of commercial use",
        recipients=("commercial",),
    ),
    # ndoo_2018: the 2018 national data opt-out operational policy.
    *_exemptions("no_research", ("research",)),
    Rule("ndoo_2018", "no_research", "exclude", "national data opt-out (research)", ("research",)),
    *_exemptions("no_planning", _PLANNING),
    Rule("ndoo_2018", "no_planning", "exclude", "national data opt-out (planning)", _PLANNING),
    *_exemptions("no_commercial", recipients=("commercial",)),
    Rule(
        "ndoo_2018",
        "no_commercial",
        "exclude",
        "the person opted out of commercial use",
        recipients=("commercial",),
    ),
)


@dataclass(frozen=True)
class Decision:
    """Whether one person is included in one project's data, and why.

    ``opt_outs_applied`` and ``exemption`` describe the project (what the register shows);
    ``refused`` means the whole project is refused, whoever the person is.
    """

    include: bool
    reason: str
    opt_outs_applied: bool
    exemption: str | None
    refused: bool = False


@dataclass(frozen=True)
class Terms:
    """What the policy means for one project: which choices exclude, which are exempt."""

    refused: str | None
    excluding: dict[Choice, str]
    exempt: dict[Choice, str]

    @property
    def opt_outs_applied(self) -> bool:
        return not self.exempt

    @property
    def exemption(self) -> str | None:
        if not self.exempt:
            return None
        return "; ".join(sorted(set(self.exempt.values())))

    def decide(self, choices: Choices) -> Decision:
        applied, exemption = self.opt_outs_applied, self.exemption

        def decision(included: bool, reason: str, *, refused: bool = False) -> Decision:
            return Decision(
                included,
                reason,
                refused=refused,
                opt_outs_applied=applied,
                exemption=exemption,
            )

        if self.refused:
            return decision(False, self.refused, refused=True)
        held = choices.held()
        for choice in Choice:
            if choice in held and choice in self.excluding:
                return decision(False, self.excluding[choice])
        used = [self.exempt[c] for c in Choice if c in held and c in self.exempt]
        if used:
            return decision(True, f"included despite an opt-out: {used[0]}")
        if held:
            return decision(True, "the person's choices do not cover this use")
        return decision(True, "no opt-out recorded")


def _check(value: str, allowed: tuple[str, ...] | dict[str, str], what: str) -> str:
    cleaned = str(value).strip().lower().replace("-", "_")
    if cleaned not in allowed:
        raise InvalidInput(
            f"Unknown {what} {str(value)[:40]!r}.", hint=f"Use one of: {', '.join(allowed)}."
        )
    return cleaned


@cache
def terms(
    purpose: str,
    recipient_kind: str,
    legal_basis: str = "public_task",
    output_form: str = "record_level",
    preset: str = "strict",
) -> Terms:
    """Evaluate the rule table once for a project (cached: projects are few, people many)."""
    purpose = _check(purpose, PURPOSES, "purpose")
    recipient_kind = _check(recipient_kind, RECIPIENTS, "recipient kind")
    legal_basis = _check(legal_basis, LEGAL_BASES, "legal basis")
    output_form = _check(output_form, OUTPUT_FORMS, "output form")
    preset = _check(preset, PRESETS, "policy preset")
    context = (purpose, recipient_kind, legal_basis, output_form)
    rows = [r for r in RULES if r.preset in (ANY, preset) and r.matches(*context)]
    refusal = next((r.reason for r in rows if r.effect == "refuse"), None)
    excluding: dict[Choice, str] = {}
    exempt: dict[Choice, str] = {}
    for choice in Choice:
        first = next((r for r in rows if r.choice == choice.value), None)
        if first is None:
            continue
        (excluding if first.effect == "exclude" else exempt)[choice] = first.reason
    return Terms(refusal, excluding, exempt)


def decide(
    choices: Choices,
    purpose: str,
    recipient_kind: str,
    legal_basis: str = "public_task",
    output_form: str = "record_level",
    preset: str = "strict",
) -> Decision:
    """Include or exclude one person from one project's data, with the reason."""
    return terms(purpose, recipient_kind, legal_basis, output_form, preset).decide(choices)


# --- documentation -----------------------------------------------------------------------------

DOC_BEGIN = "<!-- policy-table:begin (generated from confide.choices.policy.RULES) -->"
DOC_END = "<!-- policy-table:end -->"


def _cell(values: tuple[str, ...]) -> str:
    return "any" if ANY in values else ", ".join(values)


def rules_markdown() -> str:
    """The rule table as Markdown, exactly as ``docs/choices-policy.md`` must carry it."""
    lines = [
        "| # | preset | choice | purposes | recipients | legal bases | output forms | effect "
        "| reason |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(RULES, start=1):
        preset = "every preset" if r.preset == ANY else r.preset
        choice = "(whole project)" if r.choice == ANY else r.choice
        lines.append(
            f"| {i} | {preset} | {choice} | {_cell(r.purposes)} | {_cell(r.recipients)} "
            f"| {_cell(r.legal_bases)} | {_cell(r.output_forms)} | {r.effect} | {r.reason} |"
        )
    return "\n".join(lines)
