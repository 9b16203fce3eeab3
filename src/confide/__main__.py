"""``python -m confide``: the same as the ``confide`` command."""

from confide.cli.main import run

run()
