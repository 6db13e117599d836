"""Client for the sandbox's admin API, for tests and the demo."""

from __future__ import annotations

from sandbox.common.admin import SandboxAdmin, SandboxAdminError


class BkashSandboxAdminError(SandboxAdminError):
    pass


class BkashSandboxAdmin(SandboxAdmin):
    """Faults, e.g. ``add_fault("execute", "delay_after_commit", delay_seconds=31,
    match={"paymentID": pid})``; see faults.FaultSpec for every field."""

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
