"""Hostile input: property-based tests (hypothesis) of the request models, the Monetix signing module
and every HTTP endpoint of the project (merchant endpoint, bKash sandbox, Monetix sandbox).

The "ci" profile is derandomized (the same examples on every run, so ``make test`` is repeatable and
a failure reproduces as it was reported) and keeps no example database in the repository. Each test
bounds its own ``max_examples``; no test has a deadline (speed is measured by ``make bench``).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, database=None, print_blob=True,
    # No per-example deadline: speed is the benchmark's to measure, not a test's to assert (a
    # garbage-collection pause on a loaded 2-core machine once made a pure parser "slow").
    deadline=None,
    # Async tests share session fixtures (the dev server, the sandboxes); hypothesis cannot reset
    # those between examples, and need not: every example makes its own request or payment.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile("ci")
