"""Confide: GP and hospital records for planning and research, every patient's choice honoured."""

__version__ = "0.1.0"
