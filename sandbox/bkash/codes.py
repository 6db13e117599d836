"""bKash status codes and their messages (reference §11).

Where a real response spelled a message differently from the portal's list, the observed
spelling wins, because that is what clients meet on the wire.
"""

from __future__ import annotations

SUCCESS = "0000"

MESSAGES: dict[str, str] = {
    "0000": "Successful",
    "2001": "Invalid App Key",
    "2002": "Invalid Payment ID",
    "2003": "Process failed",
    "2006": "Invalid amount.",  # [OBS] with the period
    "2007": "Invalid currency",
    "2008": "Invalid intent",
    "2009": "Invalid Wallet",
    "2010": "Invalid OTP",
    "2011": "Invalid PIN",
    "2014": "Wrong PIN",
    "2015": "Wrong PIN count exceeded",
    "2020": "Exception Occurred",
    "2023": "Insufficient Balance",
    "2024": "Exception occurred",
    "2025": "Invalid request body",
    "2029": "Duplicate for All Transactions",  # [OBS] capitalisation
    "2031": "Invalid merchant invoice number",
    "2033": "Transaction Not Found",  # [OBS] capitalisation
    "2037": "The account of the debit party is in a state which prohibits execution of this transaction",
    "2038": "Debit party identity tag prohibits execution of this transaction.",  # [OBS] with the period
    "2048": "Invalid Payer Reference",
    "2049": "Invalid Merchant Callback URL",
    "2056": "Invalid Payment State",
    "2060": "Payment execution pre-requisite hasn't been met",
    "2062": "The payment has already been completed",
    "2063": "Mode is not valid as per request data",
    "2065": "Mendatory field missing",  # sic, as on the portal
    "2068": "Transaction has already been completed",
    "2069": "Transaction has already been cancelled",
    # Refund codes 2071-2082 and 2127: the [3P] table of §11 (Bikiran.Payment.Bkash); 2072 [OBS].
    "2071": "Refund after specified days not allowed",
    "2072": "Refund amount not valid",
    "2073": "Invalid SKU",
    "2074": "The transaction cannot be reversed",
    "2075": "SKU Character Limit Exceeded",
    "2076": "Reason Character Limit Exceeded",
    "2077": "Invalid TrxID",
    "2078": "Invalid Reason",
    "2079": "Invalid app Token",
    "2080": "The identity is not permitted to initiate this transaction",
    "2081": "The identity of the debit or credit party is in a state which prohibits the execution of this transaction",
    "2082": "The merchant is not permitted to initiate this transaction",
    "2117": "The payment execution has already been completed",
    "2119": "The authorized payment has already been processed",
    "2127": "Transaction not yet completed",
    "503": "System is undergoing maintenance. Please try again later",
}


def message_for(code: str) -> str:
    return MESSAGES.get(code, "Process failed")


class BkashError(Exception):
    """A business error: bKash answers it with HTTP 200 and a non-"0000" statusCode (§2); the v2
    refund API with HTTP 400 and its own envelope (§9, refunds.v2_error_body)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        self.message = message or message_for(code)
        super().__init__(f"{code} {self.message}")
        self.code = code


class GatewayError(Exception):
    """An answer from the AWS API Gateway in front of bKash, before bKash's own logic (§2.2)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status} {message}")
        self.status = status
        self.message = message
