"""Every top-level command a party registers, with its module and one-line help.

Free of imports beyond the standard library, so ``confide --help`` can list the commands
without loading Typer or any party (:mod:`confide.cli.quick`); the lazy root group
(:mod:`confide.cli.lazy`) loads each party from here when its command runs. A test checks
this table against the commands themselves.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PartyCommand:
    """A top-level command a party module registers, with its one-line help."""

    module: str
    help: str


PARTY_COMMANDS: dict[str, PartyCommand] = {
    "synth": PartyCommand(
        "confide.synth.cli",
        "Generate a synthetic English area: practices and trusts with realistic exports.",
    ),
    "practice": PartyCommand(
        "confide.practice.cli", "The practice agent: turn a source's export into a submission."
    ),
    "pseudonymiser": PartyCommand(
        "confide.pseudonymiser.cli", "The pseudonymiser: keys and pseudonyms (trusted third party)."
    ),
    "link": PartyCommand(
        "confide.pseudonymiser.cli",
        "Link two files of person records with Confide's model (trained on them); write pairs.",
    ),
    "hub": PartyCommand(
        "confide.hub.cli", "The hub: record store and trusted research environment."
    ),
    "choices": PartyCommand(
        "confide.choices.cli",
        "The patients' choices registry: record opt-outs, show them, clean lists.",
    ),
    "access": PartyCommand(
        "confide.access.cli", "Organisations, people, roles and projects (who may do what)."
    ),
    "query": PartyCommand(
        "confide.tre.cli", "Run queries over your project's views (only checked outputs leave)."
    ),
    "review": PartyCommand(
        "confide.tre.cli", "Output checkers: review outputs held for two independent votes."
    ),
    "ledger": PartyCommand(
        "confide.ledger.cli", "The transparency log: verify it, sign checkpoints, read entries."
    ),
    "witness": PartyCommand(
        "confide.witness.cli",
        "A witness: checks that a log only ever grows, and cosigns its checkpoints.",
    ),
    "rollout": PartyCommand(
        "confide.rollout.cli", "The roll-out: waves, practices, notices and the national pause."
    ),
    "usage": PartyCommand(
        "confide.usage.cli",
        "Patients' data usage reports: which releases used their data, with proofs.",
    ),
    "relay": PartyCommand(
        "confide.events.cli",
        "Events between parties: deliver what waits in the outboxes, show what is pending.",
    ),
    "serve": PartyCommand("confide.web.cli", "Serve the web app."),
    "up": PartyCommand(
        "confide.services.cli",
        "Start every party as a service on this machine (loopback), restarting any that stops.",
    ),
    "down": PartyCommand("confide.services.cli", "Stop the parties `confide up` started."),
    "services": PartyCommand(
        "confide.services.cli",
        "The parties running as services: where each is and whether it answers.",
    ),
    "service": PartyCommand("confide.services.cli", "Run one party as a service."),
    "demo": PartyCommand(
        "confide.demo.cli",
        "Generate an area, extract every practice and trust, pseudonymise, ingest, summarise.",
    ),
}
