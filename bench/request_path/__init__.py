"""The parts of ``bench.allocate``: load drivers, the servers under test, the PostgreSQL
floor, the in-process profile and the report."""
