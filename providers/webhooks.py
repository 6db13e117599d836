"""The merchant's order system as an HTTP endpoint we call: one signed POST per event delivery.

Only the POST and its outcome live here; when to retry and for how long is the notification
stream workflow's (workflows/notification_stream.py)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, SecretStr

from contracts.notifications import EVENT_ID_HEADER, SIGNATURE_HEADER, signature_header

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class WebhookEndpoint(BaseModel):
    """One configured receiver; ``secrets``: the current signing secret first, then any still
    accepted during a rotation (each request carries one ``v1`` per secret)."""

    id: str
    url: str
    secrets: list[SecretStr]

    @property
    def safe_url(self) -> str:
        """The URL without user-info or query (either may hold a token)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}" \
               f"{parts.path}"


class WebhookNotDelivered(Exception):
    """The receiver did not take the event (no 2xx): the delivery is retried."""

    def __init__(self, endpoint: WebhookEndpoint, why: str) -> None:
        super().__init__(f"endpoint {endpoint.id} ({endpoint.safe_url}): {why}")


async def post_event(http: httpx.AsyncClient, endpoint: WebhookEndpoint, event_id: str,
                     body: bytes, *, timeout: float = 10.0) -> int:
    """POST ``body`` signed now; the receiver's status code when it is 2xx."""
    headers = {"Content-Type": "application/json", EVENT_ID_HEADER: event_id,
               SIGNATURE_HEADER: signature_header(body, [s.get_secret_value()
                                                         for s in endpoint.secrets]),
               "User-Agent": "bkash-temporal-payments-notifications/1"}
    try:
        # Redirects are not followed: a signed body goes only where the merchant configured.
        resp = await http.post(endpoint.url, content=body, headers=headers, timeout=timeout,
                               follow_redirects=False)
    except httpx.TimeoutException:
        raise WebhookNotDelivered(endpoint, f"no answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise WebhookNotDelivered(endpoint, f"could not connect ({type(exc).__name__})") from None
    if not 200 <= resp.status_code < 300:
        raise WebhookNotDelivered(endpoint, f"answered HTTP {resp.status_code}")
    log.info("notification %s delivered to %s (HTTP %s)", event_id, endpoint.id, resp.status_code)
    return resp.status_code
