"""Synthetic areas: GP practices and hospital trusts with realistic, reproducible exports.

``generate`` is what the CLI, the demo and the benchmarks call.
"""

from confide.synth.generate import FORMATS, generate
from confide.synth.hospital import IdentifierErrors

__all__ = ["FORMATS", "IdentifierErrors", "generate"]
