"""Fair processing and roll-out control: notices and the waiting period at the practice,
practices' participation, areas in waves, and the national pause.

One gate (:func:`confide.rollout.gate.check`) is consulted wherever data moves: the practice
agent's extraction, the hub's ingest and the TRE's query runs.
"""
