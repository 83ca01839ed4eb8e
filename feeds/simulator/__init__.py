"""The Incheon simulator: the demo data, deterministic for a seed."""
