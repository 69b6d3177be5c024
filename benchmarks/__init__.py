"""Benchmarks: chainrule against micrograd 0.1.0 and the pure-Python float floor.

Run everything with `python -m benchmarks` from the repository root (`--help` for options).
Read in this order: `data.py` (the seeded inputs every engine gets), `workloads.py` (what is
measured, at which sizes, with which checks), `engines/` (one module per engine), `worker.py`
(the child process that runs one engine), `run.py` (the parent: interleaved rounds, checks,
the table) and `report.py` (the table's formatting).
"""
