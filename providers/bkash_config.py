"""Where and as whom to call bKash: the hosts, one merchant credential set, the API paths
(../shared/reference/bkash-api.md §1, §2). Shared by the client and the token manager."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr

SANDBOX_BASE_URL = "https://tokenized.sandbox.bka.sh/v1.2.0-beta"  # §1 [OFF], [OBS]
PRODUCTION_BASE_URL = "https://tokenized.pay.bka.sh/v1.2.0-beta"


class BkashCredentials(BaseModel):
    """One merchant credential set. Secrets are SecretStr so they never print."""

    model_config = ConfigDict(frozen=True)

    base_url: str = SANDBOX_BASE_URL
    app_key: str
    app_secret: SecretStr
    username: str
    password: SecretStr


class BkashPaths(BaseModel):
    grant: str = "/tokenized/checkout/token/grant"
    refresh: str = "/tokenized/checkout/token/refresh"
    create: str = "/tokenized/checkout/create"
    execute: str = "/tokenized/checkout/execute"
    query: str = "/tokenized/checkout/payment/status"
    capture: str = "/tokenized/checkout/payment/confirm/capture"
    # §2/§15.1: the official plugin uses /payment/confirm/void, the portal page spells it
    # /payment/confirm/capture/void. Configurable; default follows the official plugin.
    void: str = "/tokenized/checkout/payment/confirm/void"
    search: str = "/tokenized/checkout/general/searchTransaction"
    refund: str = "/tokenized/checkout/payment/refund"
