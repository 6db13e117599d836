"""Settings of the Monetix sandbox: the merchant's projects and keys, and a knob for every behaviour
the reference (/work/shared/reference/monetix-gate.md) marks as inferred [I]."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# §3.2: the bKash sale path is inferred from /v2/payment/wallet/easypaisa/sale; configurable for that reason.
DEFAULT_SALE_PATH = "/v2/payment/wallet/bkash/sale"
# §3.6: refunds are /v2/payment/{method}/refund [C]; the bKash method's segment is inferred [I].
DEFAULT_REFUND_PATH = "/v2/payment/wallet/bkash/refund"


class MonetixSandboxConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    # §1: test and production are separate projects, each with its own secret key.
    project_id: int = Field(1234, gt=0)
    secret_key: str = Field("sandbox-monetix-secret", min_length=1)
    other_projects: dict[int, str] = {}
    # The bKash account the customer sends money to, shown in display_data (§4.2, seed "Displaying
    # the payment instructions").
    receiver_account: str = "01700000000"
    # §4.2 lists `amount` among observed titles; the seed shows only `account_number`.
    display_amount: bool = True
    # Where callbacks go when the request carries no merchant_callback_url (the project setting, §3.1).
    default_callback_url: str | None = None
    # §4.1: the real platform retries 6 times at 10 s, then 70 + 10·1.12^(n-4) s up to 4 h, at most 120
    # attempts in 11 days. This is a compressed, bounded version: the waits between the attempts, so
    # len(callback_retry_delays) + 1 attempts in all.
    callback_retry_delays: list[float] = [0.2, 0.5, 1, 2, 5, 10]
    # HTTP timeout of one delivery attempt; a slower merchant counts as "no 200" and is retried.
    callback_timeout_seconds: float = Field(10.0, gt=0)
    # §3.5: the platform waits 30 minutes for clarification data. That it then declines with 20602 is
    # inferred [I]; the sandbox applies the same deadline to the bKash transaction ID.
    clarification_timeout_seconds: float = Field(1800, gt=0)
    # §3.4: "do not request the status earlier than 10 s after the initial request". Earlier requests
    # are still answered (the real behaviour is unknown) and counted in /admin/stats.
    min_status_delay_seconds: float = Field(10, ge=0)
    # §2.3: the server's ordering of numeric path segments ≥ 10 is unknown [I]; the sandbox signs with
    # byte order by default and verifies inbound data under both.
    signature_order: Literal["byte", "natural"] = "byte"
    # §4.5: a customer who pays a different sum. "accept": success with the paid amount (outcome 3);
    # "decline": decline 20304 "Incorrect amount paid" (outcome 1). Which one Monetix applies to a
    # project is a question for the account manager [I].
    amount_change_policy: Literal["accept", "decline"] = "accept"
    sale_path: str = DEFAULT_SALE_PATH
    refund_path: str = DEFAULT_REFUND_PATH
    # How long a refund stays `processing` before the provider answers (then its callback goes out).
    # 0: at once, within the refund request. Real refunds take from seconds to days [I].
    refund_processing_seconds: float = Field(0.0, ge=0)
    # §6 3230 "duplicate merchant_refund_id": whether an id must be unique in the project or only
    # among one payment's refunds is not documented [I]; the stricter reading is the default.
    merchant_refund_id_scope: Literal["project", "payment"] = "project"
    # Base URL the Payment Page is reached at, for the page's own links. None: the request's base URL.
    public_base_url: str | None = None
    # How often a served sandbox (uvicorn lifespan) checks for payments past their clarification
    # deadline, so the time-out callback goes out without waiting for another request.
    expiry_check_interval_seconds: float = Field(1.0, gt=0)
    # `provider.id` in callbacks: the platform's id of the bKash provider channel, a made-up value [I].
    provider_id: int = 1701

    @field_validator("callback_retry_delays")
    @classmethod
    def _bounded(cls, v: list[float]) -> list[float]:
        if any(d < 0 for d in v):
            raise ValueError("callback_retry_delays must not be negative")
        if len(v) > 119:
            raise ValueError("at most 120 attempts in all (§4.1), so at most 119 retry delays")
        return v

    @field_validator("sale_path", "refund_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("Gate paths must start with '/', e.g. /v2/payment/wallet/bkash/sale")
        return v

    @model_validator(mode="after")
    def _distinct_projects(self) -> MonetixSandboxConfig:
        if self.project_id in self.other_projects:
            raise ValueError(f"project {self.project_id} is both project_id and in other_projects")
        return self

    @property
    def projects(self) -> dict[int, str]:
        """Every project the sandbox knows, with its secret key."""
        return {self.project_id: self.secret_key, **self.other_projects}
