"""Contracts: the models and enums every side exchanges (merchant code, workflows, activities, the
endpoint). They import only pydantic and the standard library, so every room may import them and
none of them knows Temporal, HTTP or a provider's wire format.

- ``common``: the base model, the task queue, callback-URL rule, search-attribute names
- ``money``: poisha ↔ "500.00", the one formatter
- ``bkash``: the bKash Auth & Capture lifecycle
- ``monetix``, ``monetix_requests``: the Monetix Gate and Payment Page purchases
"""
