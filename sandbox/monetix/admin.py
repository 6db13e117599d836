"""Client for the Monetix sandbox's admin API, for tests and the demo."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

from sandbox.common.admin import SandboxAdmin, SandboxAdminError


class MonetixSandboxAdminError(SandboxAdminError):
    pass


class MonetixSandboxAdmin(SandboxAdmin):
    """Faults, e.g. ``add_fault("callback", "lose", match={"payment_id": pid, "status": "success"})``,
    ``add_fault("sale", "http_error", status=503, commit=True)`` or
    ``add_fault("refund", "drop_connection", commit=True, match={"payment_id": pid})``; see
    faults.FaultSpec."""

    provider = "Monetix"
    error = MonetixSandboxAdminError

    async def payment(self, payment_id: str, project_id: int | None = None) -> dict:
        """Full internal state; ``project_id=None`` means the sandbox's default project."""
        pid = quote(payment_id, safe="")
        path = f"/admin/payments/{pid}" if project_id is None else f"/admin/payments/{project_id}/{pid}"
        return await self._call("GET", path)

    async def payments(self) -> list[dict]:
        return await self._call("GET", "/admin/payments")

    async def ledger(self, payment_id: str | None = None, project_id: int | None = None) -> list[dict]:
        params = {k: v for k, v in (("payment_id", payment_id), ("project_id", project_id)) if v is not None}
        return await self._call("GET", "/admin/ledger", params=params)

    async def change_status(self, payment_id: str, status: str, code: str | None = None,
                            project_id: int | None = None) -> dict:
        """From now on the status request reports ``status`` ("decline", "success", ...) with
        ``code``, as if the platform had changed its mind; no callback. Answers its view."""
        return await self._call("POST", f"/admin/payments/{quote(payment_id, safe='')}/status",
                                json={"status": status, **({"code": code} if code else {})},
                                params=_project(project_id))

    async def change_paid_amount(self, payment_id: str, amount: int,
                                 project_id: int | None = None) -> dict:
        """What Monetix says was paid (poisha) from now on, in the status answer."""
        return await self._call("POST", f"/admin/payments/{quote(payment_id, safe='')}/paid-amount",
                                json={"amount": amount}, params=_project(project_id))

    async def forget_payment(self, payment_id: str, project_id: int | None = None) -> dict:
        """The status request answers 3061 (not found) for the payment from now on."""
        return await self._call("DELETE", f"/admin/payments/{quote(payment_id, safe='')}",
                                params=_project(project_id))

    async def refunds(self, payment_id: str, project_id: int | None = None) -> list[dict]:
        """The payment's refunds, oldest first: operation_id, request_id, merchant_refund_id, amount,
        status (processing / success / decline), code, provider_refund_id, ..."""
        return (await self.payment(payment_id, project_id))["refunds"]

    async def decline_next_refund(self, payment_id: str | None = None, *, code: str | None = None,
                                  times: int = 1) -> dict:
        """The provider declines the next ``times`` refunds (of ``payment_id``, or of any payment): the
        refund is acknowledged, then its callback says decline with ``code`` (default 20000)."""
        kw: dict = {"times": times}
        if payment_id is not None:
            kw["match"] = {"payment_id": payment_id}
        if code is not None:
            kw["code"] = code
        return await self.add_fault("refund", "decline", **kw)

    async def wait_for_refund_callback(self, payment_id: str, *, merchant_refund_id: str | None = None,
                                       operation_status: str | None = None, project_id: int | None = None,
                                       delivered: bool = True, timeout: float = 10.0) -> dict:
        """The first refund callback (operation.type "refund") of ``payment_id``, for the refund
        ``merchant_refund_id`` and with operation.status ``operation_status`` when given."""
        deadline = time.monotonic() + timeout
        while True:
            view = await self.payment(payment_id, project_id)
            for record in view["callbacks"]:
                if (record["operation_type"] == "refund"
                        and merchant_refund_id in (None, record["merchant_refund_id"])
                        and operation_status in (None, record["operation_status"])
                        and (record["delivered"] or not delivered)):
                    return record
            if time.monotonic() > deadline:
                raise MonetixSandboxAdminError(
                    f"no {'delivered ' if delivered else ''}refund callback for payment {payment_id}"
                    f"{f' refund {merchant_refund_id}' if merchant_refund_id else ''} within {timeout:g} s; "
                    f"callbacks so far: {[(r['operation_type'], r['operation_status'], r['delivery']) for r in view['callbacks']]}")
            await asyncio.sleep(0.02)

    async def wait_for_callback(self, payment_id: str, status: str, *, project_id: int | None = None,
                                delivered: bool = True, timeout: float = 10.0) -> dict:
        """The first callback of ``payment_id`` with payment.status ``status`` (delivered, unless
        ``delivered=False``), polling the admin API until ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            view = await self.payment(payment_id, project_id)
            for record in view["callbacks"]:
                if record["status"] == status and (record["delivered"] or not delivered):
                    return record
            if time.monotonic() > deadline:
                raise MonetixSandboxAdminError(
                    f"no {'delivered ' if delivered else ''}{status!r} callback for payment {payment_id} "
                    f"within {timeout:g} s; callbacks so far: "
                    f"{[(r['status'], r['delivery']) for r in view['callbacks']]}")
            await asyncio.sleep(0.02)


def _project(project_id: int | None) -> dict:
    return {} if project_id is None else {"project_id": project_id}
