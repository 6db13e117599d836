"""PaymentPagePurchase: a Monetix bKash purchase on Monetix's Payment Page (seed 003, Table 1): a
signed Payment Page link → the customer pays on Monetix's checkout page → final callback (or the
status request when none comes).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from contracts.common import UNKNOWN_ACCOUNT
from contracts.money import format_bdt
from contracts.monetix import (
    MonetixActivity,
    MonetixPurchaseResult,
    MonetixStage,
    PaymentInstructions,
    PaymentPageLink,
    PaymentPageLinkInput,
    PaymentPagePurchaseRequest,
)
from contracts.monetix_status import CODE_TRANSACTION_NOT_FOUND
from workflows.bookkeeping import error_kind
from workflows.monetix_purchase import MonetixPurchaseBase


@workflow.defn
class PaymentPagePurchase(MonetixPurchaseBase):
    interface = "payment_page"

    @workflow.init
    def __init__(self, req: PaymentPagePurchaseRequest) -> None:
        self._req = req
        self._setup(req.params.payment_id, req.params.amount_poisha, req.provider_timeout)
        self._url: str | None = None

    @workflow.run
    async def run(self, req: PaymentPagePurchaseRequest) -> MonetixPurchaseResult:
        try:
            link = await workflow.execute_activity(
                MonetixActivity.PAYMENT_PAGE_LINK,
                PaymentPageLinkInput(params=req.params, callback_url=req.callback_url,
                                     account_id=req.account_id),
                result_type=PaymentPageLink, start_to_close_timeout=timedelta(seconds=10),
                summary=f"Payment Page link {format_bdt(req.params.amount_poisha)} BDT")
        except ActivityError as err:
            if error_kind(err) != UNKNOWN_ACCOUNT:
                raise
            # No project for the account on this worker: no link, nothing sent to Monetix.
            self._failed, self._detail = True, self._books.record_error(err)
            return await self._finish(req.params.amount_poisha)
        self._url = link.url
        self._set_stage(MonetixStage.AWAITING_CUSTOMER, "Payment Page link ready")
        try:
            await self._wait_or_poll(lambda: False, req.result_window, [], "Payment Page result",
                                     not_found_is_final=True)
        except asyncio.CancelledError:
            await self._stop_on_cancel()
        if self._final is not None and self._final.code == CODE_TRANSACTION_NOT_FOUND:
            self._final = None
            self._detail = "the customer never paid on the Payment Page"
        return await self._finish(req.params.amount_poisha)

    @workflow.update
    async def payment_page(self) -> PaymentInstructions:
        await workflow.wait_condition(lambda: self._url is not None or self._failed)
        return self._instructions(payment_page_url=self._url)

