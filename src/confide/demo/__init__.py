"""The demo: the whole flow on a synthetic area, on embedded defaults."""
