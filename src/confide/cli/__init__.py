"""The ``confide`` command: one sub-command group per party, wired in ``main``."""
