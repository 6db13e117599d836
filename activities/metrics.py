"""Provider calls by operation and outcome, with their latency, and refunds by outcome: an activity
interceptor, so no activity repeats the bookkeeping. The outcome is ``ok`` or the error's kind
(``BkashNoResponse``, ``MonetixDeclined``, …) — a few dozen values at most, never an id."""

from __future__ import annotations

import time
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from contracts.metrics import PROVIDER_CALL_LATENCY, PROVIDER_CALLS, REFUNDS
from contracts.refunds import RefundActivity

_REFUNDS = {RefundActivity.BKASH_REFUND.value: "bkash", RefundActivity.MONETIX_REFUND.value: "monetix"}


class ActivityMetricsInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        meter = activity.metric_meter()
        started = time.monotonic()
        outcome = "ok"
        try:
            result = await super().execute_activity(input)
        except ApplicationError as err:
            outcome = err.type or "ApplicationError"
            raise
        except BaseException as err:
            outcome = type(err).__name__
            raise
        finally:
            labels = {"operation": info.activity_type, "outcome": outcome}
            meter.create_counter(PROVIDER_CALLS, "activity attempts (provider calls), by "
                                 "operation and outcome").add(1, labels)
            meter.create_histogram_float(PROVIDER_CALL_LATENCY, "activity attempt duration",
                                         "s").record(time.monotonic() - started, labels)
        if info.activity_type in _REFUNDS:
            status = getattr(getattr(result, "status", None), "value", None) or "unknown"
            meter.create_counter(REFUNDS, "refund calls, by provider and outcome").add(
                1, {"provider": _REFUNDS[info.activity_type], "outcome": str(status)})
        return result
