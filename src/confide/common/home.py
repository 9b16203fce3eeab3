"""Where Confide keeps its state: one folder (``--home``), one sub-folder per party.

Parties never reach into each other's folders; they talk through public interfaces. Keeping
the folders apart is what lets a test scan "every byte the hub holds" for identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path(".confide")
PARTIES = (
    "practice",
    "pseudonymiser",
    "hub",
    "choices",
    "access",
    "tre",
    "ledger",
    "web",
    "witness",
    "rollout",
)


def resolve_home(home: Path | str | None) -> Path:
    """The ``--home`` given, else ``$CONFIDE_HOME``, else ``./.confide``."""
    if home is not None:
        return Path(home)
    from confide.common import settings

    return Path(settings.value(settings.HOME.name) or DEFAULT_HOME)


@dataclass(frozen=True)
class Home:
    """The state folder of one Confide installation."""

    root: Path

    @classmethod
    def at(cls, home: Path | str | None = None) -> Home:
        root = resolve_home(home)
        root.mkdir(parents=True, exist_ok=True)
        return cls(root.resolve())

    @classmethod
    def existing(cls, home: Path | str | None = None) -> Home:
        """The home folder for commands that only read: a missing one is an error, not made."""
        from confide.common.errors import NotFound

        root = resolve_home(home)
        if not root.is_dir():
            where = root.resolve()
            what = "is a file, not a Confide home folder" if root.exists() else "does not exist"
            raise NotFound(
                f"{where} {what}: there is nothing to show.",
                hint="Give --home of an existing Confide installation (or set CONFIDE_HOME), "
                "or create one with `confide demo` or `confide synth` and `confide practice "
                "extract`.",
            )
        return cls(root.resolve())

    def party(self, name: str) -> Path:
        """The private folder of one party (created on first use, owner-only).

        Owner-only is enforced, not just asked for at creation: a folder loosened later (or
        made by a tool with a wide umask) is narrowed again, so where each party's service runs
        as its own OS user, the hub's process cannot read the pseudonymiser's keys."""
        if name not in PARTIES:
            raise ValueError(f"unknown party {name!r}")
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
        return path
