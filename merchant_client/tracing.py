"""Optional OpenTelemetry tracing of every client the project builds (README "Metrics")."""

from __future__ import annotations

from collections.abc import Mapping


TRACING_SETTING = "PAYMENTS_TRACING"


def tracing_interceptors(env: Mapping[str, str] | None = None) -> list:
    """``PAYMENTS_TRACING=otel``: OpenTelemetry spans for workflow starts, updates, workflow runs
    and activities (``temporalio.contrib.opentelemetry``), through the process's global tracer
    provider (configure its exporter with opentelemetry-sdk / ``opentelemetry-instrument``).
    Off by default; needs the ``tracing`` extra."""
    import os

    value = ((os.environ if env is None else env).get(TRACING_SETTING) or "off").lower()
    if value == "off":
        return []
    if value != "otel":
        raise SystemExit(f"configuration problem:\n  - {TRACING_SETTING} must be off (the "
                         "default) or otel")
    try:
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError:
        raise SystemExit(f"configuration problem:\n  - {TRACING_SETTING}=otel needs the "
                         "OpenTelemetry packages: pip install '.[tracing]'") from None
    return [TracingInterceptor()]
