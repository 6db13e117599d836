"""The customer's returns from bKash's page as BkashAuthCapture sees them: which return a round
(one execute, or one query) answers, who waits for which answer, what the redirect signature means,
and the bounds on what a stream of returns (reloads, or forgeries by whoever saw the link) can cost
in bKash calls and in history.

Why rounds and not update-id deduplication: a return is not an idempotent fact like a Monetix
callback. "The customer is back now" after an earlier return was answered "bKash has not seen the
approval" is news (the real return after a forged one), so every return the endpoint forwards is its
own update, and the duplicates are absorbed here: a return arriving while one is being handled joins
it; if that round ends "still waiting", what joined gets a round of its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

from contracts.bkash import (
    BkashStage,
    BrowserReturn,
    BrowserReturnStatus,
    ReturnOutcome,
    SignatureRule,
)

# Executes asked for by returns are at most one per spacing; the customer's real return after a
# forged one waits at most this long for its execute.
RETURN_EXECUTE_SPACING = timedelta(seconds=3)
PATCH_RETURN_SPACING = "return-execute-spacing"
# What returns may add to the history: returns joining the one being handled (per round), and
# cancel/failure returns whose signature is not the create answer's (recorded, nothing more).
MAX_JOINED_RETURNS = 3
MAX_UNCONFIRMED_RETURNS = 3


class CustomerReturns:
    def __init__(self) -> None:
        # The opaque signature of the create answer's *CallbackURLs (§4.2), None when it had none.
        self.redirect_signature: str | None = None
        self.pending: BrowserReturn | None = None  # the return the current round answers
        self._queued: BrowserReturn | None = None  # the latest one that arrived meanwhile
        self._joined = 0
        self._round_ticket = 0
        self._received = 0
        self._answered = 0
        self._outcome = ReturnOutcome(stage=BkashStage.CREATING)
        self._unconfirmed = 0
        self._last_execute: datetime | None = None

    def signature_matches(self, ret: BrowserReturn) -> bool:
        return self.redirect_signature is None or ret.signature == self.redirect_signature

    def is_unconfirmed(self, ret: BrowserReturn) -> bool:
        """A cancel/failure whose signature is not the create answer's, under the advisory rule:
        maybe bKash's real redirect (no source proves the signatures equal, §5), maybe anyone's
        typing. Only bKash can tell, so it ends nothing."""
        return ret.status is not BrowserReturnStatus.SUCCESS and not self.signature_matches(ret)

    def refusal(self, ret: BrowserReturn, *, stage: BkashStage,
                payment_id: str | None) -> str | None:
        """Why the validator refuses the return (nothing is written to history), or None."""
        if self.pending is None and stage is not BkashStage.AWAITING_APPROVAL:
            return f"is {stage.value}, not waiting for the customer's return from bKash"
        if ret.payment_id != payment_id:
            return (f"does not have paymentID {ret.payment_id} (it has {payment_id}); nothing "
                    "changed")
        # Strict: a signature other than the create answer's is not bKash's redirect. Advisory
        # (default): a success still only triggers the execute bKash decides on.
        if not self.signature_matches(ret) and ret.signature_rule is SignatureRule.STRICT:
            return ("refuses the return: its redirect signature is not the create answer's "
                    "(strict rule)")
        if self.is_unconfirmed(ret) and self._unconfirmed >= MAX_UNCONFIRMED_RETURNS:
            return (f"has {MAX_UNCONFIRMED_RETURNS} unconfirmed cancel/failure returns recorded "
                    "already; nothing changed")
        if self.pending is not None and self._joined >= MAX_JOINED_RETURNS:
            return "is already handling the customer's return; nothing changed"
        return None

    def record_unconfirmed(self) -> None:
        self._unconfirmed += 1

    async def join(self, ret: BrowserReturn) -> ReturnOutcome:
        """Wait for the round that answers this return; start one if none is running."""
        self._received += 1
        ticket = self._received
        if self.pending is None:
            self.pending, self._round_ticket = ret, ticket
        else:
            self._queued = ret
            self._joined += 1
        await workflow.wait_condition(lambda: self._answered >= ticket)
        return self._outcome

    def answer(self, outcome: ReturnOutcome, *, still_waiting: bool = False) -> None:
        """End the current round. "Still waiting" (bKash has not seen the approval) answers only
        the returns the round started with: what joined it may be the customer's real return after a
        forged one, and gets a round of its own."""
        if self.pending is None:
            return
        self._outcome = outcome
        if still_waiting and self._queued is not None:
            self._answered = self._round_ticket
            self.pending, self._queued = self._queued, None
            self._round_ticket, self._joined = self._received, 0
            return
        self.pending = self._queued = None
        self._joined = 0
        self._answered = self._received

    async def space_execute(self) -> None:
        """Before an execute a return asked for: at most one per RETURN_EXECUTE_SPACING."""
        if self._last_execute is not None:
            wait = self._last_execute + RETURN_EXECUTE_SPACING - workflow.now()
            # Histories recorded before the spacing never slept here (patched → False on replay).
            if wait > timedelta(0) and workflow.patched(PATCH_RETURN_SPACING):
                await workflow.sleep(wait, summary="spacing of executes asked for by returns")
        self._last_execute = workflow.now()
