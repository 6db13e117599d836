"""Settings of the bKash sandbox: the merchant's credentials and the knobs for behaviour the
reference could not pin down (see /work/shared/reference/bkash-api.md, marked [INF] there)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class BkashSandboxConfig(BaseModel):
    app_key: str = "sandbox-app-key"
    app_secret: str = "sandbox-app-secret"
    username: str = "sandbox-merchant"
    password: str = "sandbox-password"
    api_version: str = "v1.2.0-beta"
    # Base URL the hosted page is reached at (used in bkashURL and the page's forms). None: the
    # base URL of the request that created the payment, which is right for loopback tests.
    public_base_url: str | None = None
    token_ttl_seconds: float = Field(3600, gt=0)
    # Cognito's default; the real lifetime is not stated anywhere (reference §3.2).
    refresh_token_ttl_seconds: float = Field(30 * 24 * 3600, gt=0)
    # "Do not call more than twice within an hour or the caller is blocked for one hour" (§3.2):
    # grant + refresh calls per credential set in a rolling hour; 0 switches the limit off.
    token_calls_per_hour: int = Field(2, ge=0)
    lockout_seconds: float = Field(3600, ge=0)
    # The rolling window those calls are counted in: an hour at bKash. Shorter only for tests and
    # the chaos run (with the worker's BKASH_TOKEN_BUDGET_WINDOW_SECONDS set to match).
    token_window_seconds: float = Field(3600, gt=0)
    # The void page documents errorCode/errorMessage while every logged tokenized call uses
    # statusCode/statusMessage (§8.3, §15.5); clients must parse both.
    settle_error_envelope: Literal["statusCode", "errorCode"] = "statusCode"
    # §10.2: after a customer cancel/failure on the hosted page, query still says "Initiated".
    # True reports "Cancelled"/"Failed" instead, for clients that want to test that branch.
    query_reports_page_outcome: bool = False
    # How long bKash holds an authorization is unknown (§8.4, §15.2). When set, an Authorized
    # payment neither captured nor voided within this many seconds becomes Cancelled (ledger EXPIRE).
    authorization_hold_seconds: float | None = Field(None, gt=0)
    # Whether the browser's redirect carries the signature the create answer's *CallbackURLs show
    # (§4.2, [OBS] 2024-26) or another one: no source proves they are equal (§5), so merchants can
    # test that their code works either way.
    redirect_signature: Literal["as_created", "different"] = "as_created"
