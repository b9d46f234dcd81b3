"""Benchmarks and test-data tools (not part of the installed package)."""
