"""The chaos run: many concurrent payments of both kinds under random faults — provider faults
from the sandboxes, callback faults, kill -9 of the worker, restarts of the Temporal dev server and of
the merchant endpoint — then the invariants, checked against the sandboxes' ledgers."""
