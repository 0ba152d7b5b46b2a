"""Benchmarks of PhoneFleet; their latest figures are in ``docs/benchmarks.md``.

``python -m bench.allocate --requests 1000`` measures allocate+release over Ray Serve, over
plain uvicorn and against the raw PostgreSQL floor, and profiles the in-process service.
"""
