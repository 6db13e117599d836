"""The provider clients of a worker's merchant accounts, one per account (README "Several merchant
accounts"): a payment's activity input names its account, and the activity calls with that
account's client — its own credentials, token and budget (bKash) or project and key (Monetix)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from temporalio.exceptions import ApplicationError

from contracts.common import DEFAULT_ACCOUNT, UNKNOWN_ACCOUNT

C = TypeVar("C")


class AccountClients(Generic[C]):
    """``{account id: client}``; a single client is the default account's."""

    def __init__(self, provider: str, clients: C | Mapping[str, C]) -> None:
        self.provider = provider
        self.clients: dict[str, C] = (dict(clients) if isinstance(clients, Mapping)
                                      else {DEFAULT_ACCOUNT: clients})

    @property
    def default(self) -> C | None:
        return self.clients.get(DEFAULT_ACCOUNT)

    def get(self, account_id: str, *, first_call: bool = False) -> C:
        """The account's client. Unknown on the payment's first call: nothing was sent, the payment
        ends (non-retryable). Unknown later (a worker deployed without an account that has payments
        in flight): retried until a worker with its settings takes the activity."""
        client = self.clients.get(account_id)
        if client is not None:
            return client
        known = ", ".join(sorted(self.clients)) or "none"
        todo = (f"nothing was sent to {self.provider}; add the account's settings to the worker "
                "(README \"Several merchant accounts\") and start the payment again"
                if first_call else "retried until a worker with that account's settings takes it")
        raise ApplicationError(f"merchant account {account_id!r} has no {self.provider} settings on "
                               f"this worker (its accounts: {known}): {todo}",
                               {"account_id": account_id}, type=UNKNOWN_ACCOUNT,
                               non_retryable=first_call)
