"""Benchmarks of PhoneFleet, each run as ``python -m bench.<name>``; their latest figures
are in ``docs/benchmarks.md``."""
