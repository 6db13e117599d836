"""Where and as whom to call Monetix: Gate and the Payment Page (reference §1).

Test and production are separate projects with separate secret keys.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class MonetixGateConfig(BaseModel):
    """Where and as whom to call Gate. Test and production are separate projects with separate keys (§1)."""

    model_config = ConfigDict(frozen=True)

    base_url: str = "https://api.trxhost.com"  # §1, Monetix Gate host
    project_id: int = Field(gt=0)
    secret_key: SecretStr
    # §3.2: the bKash sale path is inferred from the wallet family; configurable until Monetix confirms.
    sale_path: str = "/v2/payment/wallet/bkash/sale"
    clarification_path: str = "/v2/payment/clarification"
    status_path: str = "/v2/payment/status"
    # §3.6: refunds are `/v2/payment/{method}/refund` [C]; the bKash method's segment is inferred [I].
    refund_path: str = "/v2/payment/wallet/bkash/refund"
    # DESIGN: the 30 s provider timeout is both the HTTP timeout and the activity's start-to-close.
    timeout_seconds: float = Field(default=30, gt=0)


class MonetixPaymentPageConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    base_url: str = "https://paymentpage.trxhost.com"  # §1, Monetix Payment Page host
    project_id: int = Field(gt=0)
    secret_key: SecretStr
