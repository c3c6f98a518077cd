"""actorflow's benchmark harness: ``python -m benchmarks SUITE [options]``.

Run it from the repository root: it is not part of the installed package. Suites measure
the stores' ``create_batch`` against the raw database floor (``store``), the runtime's
per-step costs (``runtime``), the same runtime scenarios on a peer engine (``peers``: DBOS
Transact, installed in its own virtual environment under ``benchmarks/.peers``), streams
(``streams``), hook resume latency (``hooks``) and the per-step cost of OpenTelemetry
(``otel``); ``all`` runs every suite.
"""
