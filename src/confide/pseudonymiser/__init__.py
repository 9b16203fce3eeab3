"""pseudonymiser."""
