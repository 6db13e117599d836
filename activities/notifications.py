"""Delivering merchant notifications: the worker's endpoints (ids only into the workflow; the
secrets stay here) and one signed POST per attempt."""

from __future__ import annotations

from datetime import timedelta

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from contracts.notifications import (
    DEFAULT_BUDGET,
    DEFAULT_FIRST_RETRY,
    DEFAULT_MAX_RETRY_INTERVAL,
    EVENT_SIGNAL,
    PUBLISH_ACTIVITY,
    STREAM_WORKFLOW,
    DeliveryInput,
    DeliveryReceipt,
    NotificationPlan,
    PublishInput,
    StreamStart,
)
from providers.webhooks import WebhookEndpoint, WebhookNotDelivered, post_event

ENDPOINT_UNKNOWN = "NotificationEndpointUnknown"


class NotificationActivities:
    def __init__(self, http: httpx.AsyncClient, endpoints: dict[str, WebhookEndpoint], *,
                 budget: timedelta = DEFAULT_BUDGET, first_retry: timedelta = DEFAULT_FIRST_RETRY,
                 max_retry_interval: timedelta = DEFAULT_MAX_RETRY_INTERVAL) -> None:
        self._http = http
        self._endpoints = endpoints
        self._plan = NotificationPlan(endpoints=list(endpoints), budget=budget,
                                      first_retry=first_retry,
                                      max_retry_interval=max_retry_interval)

    @activity.defn(name="notification_plan")
    async def notification_plan(self) -> NotificationPlan:
        return self._plan

    @activity.defn(name="deliver_notification")
    async def deliver_notification(self, inp: DeliveryInput) -> DeliveryReceipt:
        endpoint = self._endpoints.get(inp.endpoint)
        if endpoint is None:
            # Configuration changed while the event waited: nothing will ever deliver it here.
            raise ApplicationError(f"notification endpoint {inp.endpoint!r} is no longer "
                                   "configured on this worker (PAYMENTS_NOTIFY_ENDPOINTS)",
                                   type=ENDPOINT_UNKNOWN, non_retryable=True)
        try:
            status = await post_event(self._http, endpoint, inp.event.event_id, inp.event.body())
        except WebhookNotDelivered as err:
            raise ApplicationError(str(err), type="NotificationNotDelivered") from None
        return DeliveryReceipt(endpoint=inp.endpoint, status_code=status,
                               attempt=activity.info().attempt)


class NotificationPublisher:
    """Hands a workflow's event to its stream workflow, starting the stream if needed."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name=PUBLISH_ACTIVITY)
    async def publish_notification(self, item: PublishInput) -> None:
        info = activity.info()
        await self._client.start_workflow(
            STREAM_WORKFLOW, StreamStart(stream_id=item.stream_id), id=item.stream_id,
            task_queue=info.task_queue, start_signal=EVENT_SIGNAL, start_signal_args=[item],
            static_summary=f"notifications of {item.stream_id.removeprefix('notify:')}")
