"""actorflow's benchmark harness: ``python -m benchmarks store|runtime|peers|all [options]``.

Run it from the repository root: it is not part of the installed package. Suites measure
the stores' ``create_batch`` against the raw database floor, the runtime's per-step costs,
and the same runtime scenarios on a peer engine (DBOS Transact, installed in its own
virtual environment under ``benchmarks/.peers``).
"""
