"""The usage-report party: each patient's data usage report, with proofs.

It runs beside the choices registry and the pseudonymiser (the only parties that may hold an
NHS number) and reads only public material from the others: the whole transparency log and the
TRE's per-release membership files, the same bytes whoever asks. ``usage_report`` builds a
report; ``ChoiceLogger`` puts choice changes into the log as per-person commitments; ``SaltStore``
keeps the per-person secrets those commitments are keyed with.
"""

from confide.usage.choices import ChoiceLogger, log_choice_events
from confide.usage.report import UsageReport, usage_report
from confide.usage.salts import SaltStore

__all__ = ["ChoiceLogger", "SaltStore", "UsageReport", "log_choice_events", "usage_report"]
