"""actorflow's benchmark harness: ``python -m benchmarks SUITE [options]``.

Installed with actorflow (the ``benchmarks`` package), so it also runs outside a clone.
Suites measure the stores' ``create_batch`` against the raw database floor (``store``), the
runtime's per-step costs (``runtime``), the same runtime scenarios on a peer engine
(``peers``: DBOS Transact, in a virtual environment of its own, see
:mod:`benchmarks.peers.venv`), streams (``streams``), hook resume latency (``hooks``), the
per-step cost of OpenTelemetry (``otel``) and sleeping runs (``sleepers``); ``all`` runs
every suite.
"""
