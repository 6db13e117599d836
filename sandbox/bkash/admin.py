"""Client for the sandbox's admin API, for tests and the demo."""

from __future__ import annotations

from typing import Literal

from sandbox.common.admin import SandboxAdmin, SandboxAdminError


class BkashSandboxAdminError(SandboxAdminError):
    pass


class BkashSandboxAdmin(SandboxAdmin):
    """Faults, e.g. ``add_fault("execute", "delay_after_commit", delay_seconds=31,
    match={"paymentID": pid})`` or ``add_fault("refund", "drop_connection", commit=True,
    match={"paymentID": pid})`` (refund applied, its answer lost; ``refund_status`` still
    answers); see faults.FaultSpec for every field."""

    provider = "bKash"
    error = BkashSandboxAdminError

    async def ledger(self, payment_id: str | None = None, invoice: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("paymentID", payment_id), ("invoice", invoice)) if v is not None}
        return await self._call("GET", "/admin/ledger", params=params)

    async def calls(self, payment_id: str | None = None, invoice: str | None = None) -> dict[str, int]:
        """API calls received per operation (``{"create": 1, "execute": 1, "query": 0, ...}``), for
        one paymentID and/or invoice; create is counted per invoice only (it has no paymentID yet)."""
        params = {k: v for k, v in (("paymentID", payment_id), ("invoice", invoice)) if v is not None}
        return await self._call("GET", "/admin/calls", params=params)

    async def payment(self, payment_id: str) -> dict:
        return await self._call("GET", f"/admin/payments/{payment_id}")

    async def payments(self, invoice: str) -> list[dict]:
        return await self._call("GET", "/admin/payments", params={"invoice": invoice})

    async def refunds(self, payment_id: str | None = None, invoice: str | None = None) -> list[dict]:
        """Every refund bKash made, oldest first: payment_id, merchant_invoice, original_trx_id,
        refund_trx_id, amount ("300.00"), amount_poisha, amount_as_sent, sku, reason, api (v1/v2),
        at, completed_time, repeats."""
        params = {k: v for k, v in (("paymentID", payment_id), ("invoice", invoice)) if v is not None}
        return await self._call("GET", "/admin/refunds", params=params)

    async def age_payment(self, payment_id: str, *, seconds: float | None = None,
                          days: float | None = None) -> dict:
        """Move a completed payment's completion ``seconds`` (or ``days``) into the past, e.g.
        ``age_payment(pid, days=16)`` puts it past the 15-day refund window. Answers its view."""
        body = {k: v for k, v in (("seconds", seconds), ("days", days)) if v is not None}
        return await self._call("POST", f"/admin/payments/{payment_id}/age", json=body)

    async def refund_settings(self, *, window_seconds: float | None = None,
                              max_refunds: int | None = None) -> dict:
        """The refund settings (``{"window_seconds": 1296000.0, "max_refunds": 10}``), changed
        first when given (``max_refunds=0``: no limit). ``reset`` restores the defaults."""
        changes = {k: v for k, v in (("window_seconds", window_seconds), ("max_refunds", max_refunds))
                   if v is not None}
        if not changes:
            return await self._call("GET", "/admin/refund-settings")
        return await self._call("POST", "/admin/refund-settings", json=changes)

    async def change_status(self, payment_id: str, status: str) -> dict:
        """From now on search and query report ``status`` ("Completed", "Cancelled", ...) for the
        payment, as if bKash had changed its mind after the fact. Answers its view."""
        return await self._call("POST", f"/admin/payments/{payment_id}/status",
                                json={"status": status})

    async def refund_outside(self, payment_id: str, amount: str,
                             reason: str = "refunded in the merchant portal") -> dict:
        """A refund of ``amount`` ("100.00") made outside the API: a ledger line, no call. Answers
        the payment's view with ``refund_trx_id``."""
        return await self._call("POST", f"/admin/payments/{payment_id}/outside-refund",
                                json={"amount": amount, "reason": reason})

    async def forget_payment(self, payment_id: str) -> dict:
        """bKash no longer knows the payment: search of its trxID answers 2033."""
        return await self._call("DELETE", f"/admin/payments/{payment_id}")

    async def lose_refund_answer(self, payment_id: str,
                                 kind: Literal["drop_connection", "http_error", "delay_after_commit"]
                                 = "drop_connection", *, operation: Literal["refund", "refund_status"]
                                 = "refund", delay_seconds: float = 0.0, status: int = 503,
                                 times: int = 1) -> dict:
        """bKash applies the next ``times`` refunds of ``payment_id`` (v1 or v2) and their answer is
        lost: the connection drops, a ``status`` 5xx page comes back, or it arrives
        ``delay_seconds`` late (past the client's timeout). ``operation="refund_status"`` breaks
        refund status instead."""
        kw: dict = {"commit": True} if kind != "delay_after_commit" else {"delay_seconds": delay_seconds}
        if kind == "http_error":
            kw["status"] = status
        return await self.add_fault(operation, kind, times=times, match={"paymentID": payment_id}, **kw)
