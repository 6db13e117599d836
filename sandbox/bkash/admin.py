"""Client for the sandbox's admin API, for tests and the demo."""

from __future__ import annotations

from typing import Any

import httpx


class BkashSandboxAdminError(RuntimeError):
    pass


class BkashSandboxAdmin:
    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http

    async def add_fault(self, operation: str, kind: str, **kw: Any) -> dict:
        """E.g. ``add_fault("execute", "delay_after_commit", delay_seconds=31,
        match={"paymentID": pid})``; see faults.FaultSpec for every field."""
        return await self._call("POST", "/admin/faults", json={"operation": operation, "kind": kind, **kw})

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/admin/faults")

    async def faults(self) -> list[dict]:
        return await self._call("GET", "/admin/faults")

    async def ledger(self, payment_id: str | None = None, invoice: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("paymentID", payment_id), ("invoice", invoice)) if v is not None}
        return await self._call("GET", "/admin/ledger", params=params)

    async def payment(self, payment_id: str) -> dict:
        return await self._call("GET", f"/admin/payments/{payment_id}")

    async def payments(self, invoice: str) -> list[dict]:
        return await self._call("GET", "/admin/payments", params={"invoice": invoice})

    async def stats(self) -> dict:
        return await self._call("GET", "/admin/stats")

    async def reset(self) -> None:
        await self._call("POST", "/admin/reset")

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        response = await self.http.request(method, self.base_url + path, **kw)
        if response.is_error:
            raise BkashSandboxAdminError(
                f"bKash sandbox admin {method} {path} answered HTTP {response.status_code}: {response.text}")
        return response.json()
