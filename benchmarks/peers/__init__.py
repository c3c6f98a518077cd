"""Peer engines measured beside actorflow, each in its own virtual environment.

``venv`` installs a peer into a venv of its own (``benchmarks/.peers/<name>`` in a clone),
``suite`` runs the peer's script there as a subprocess and compares its numbers with
actorflow's. Peer scripts (``dbos_bench.py``) are never imported by the harness.
"""
