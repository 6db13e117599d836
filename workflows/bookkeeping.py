"""What every lifecycle workflow records the same way: its stage, the timeline, the Web UI's search
attributes and current details, and errors.

The upsert rule: each upsert is a billable action, so the stage is shown only where a payment can
rest (a stage that lasts one bounded provider call is not), and only when it or the provider's
payment id changed (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

from contracts.common import TimelineEvent
from workflows import search_attributes as sa

# The stage upsert also carries the stage's time (PaymentStageSince): a new attribute in an
# existing command, so payments already in flight keep sending the upsert they sent before.
STAGE_SINCE = "stage-since-search-attribute"


class _State(Protocol):
    stage: Any
    last_error: str | None
    timeline: list[TimelineEvent]


class Bookkeeping:
    """Holds a workflow's ``state`` model (any model with ``stage``, ``last_error``, ``timeline``).

    ``headline()`` gives the first lines of the Web UI's current details; the latest timeline
    event follows them. ``shown`` is what the search attributes show now (set at start by the
    merchant client)."""

    def __init__(self, state: _State, headline: Callable[[], str], *,
                 shown_stage: str, resting: Callable[[Any], bool] = lambda _stage: True) -> None:
        self.state = state
        self._headline = headline
        self._resting = resting
        self._shown: tuple[str, str | None] = (shown_stage, None)

    def set_stage(self, stage: Any, event: str | None = None, *, show: bool = True,
                  provider_payment_id: str | None = None,
                  also: Sequence[SearchAttributeUpdate] = ()) -> None:
        """``also``: further search attributes of this workflow, upserted with the stage."""
        self.state.stage = stage
        self.event(event or f"stage {stage.value}")
        shown = (stage.value, provider_payment_id)
        if show and self._resting(stage) and shown != self._shown:
            updates = [sa.PAYMENT_STAGE.value_set(stage.value)]
            if provider_payment_id != self._shown[1]:
                updates.append(sa.PROVIDER_PAYMENT_ID.value_set(provider_payment_id or ""))
            if stage.value != self._shown[0] and workflow.patched(STAGE_SINCE):
                updates.append(sa.PAYMENT_STAGE_SINCE.value_set(workflow.now()))
            workflow.upsert_search_attributes([*updates, *also])
            self._shown = shown
        self.show_details()

    def show_details(self) -> None:
        workflow.set_current_details(f"{self._headline()}\n\n{self.state.timeline[-1].event}")

    def event(self, text: str) -> None:
        self.state.timeline.append(TimelineEvent(at=workflow.now(), stage=self.state.stage.value,
                                                 event=text))

    def record_error(self, err: ActivityError) -> str:
        self.state.last_error = error_message(err)
        self.event(f"error: {self.state.last_error}")
        return self.state.last_error

    def record_problem(self, text: str) -> None:
        self.state.last_error = text
        self.event(f"error: {text}")


def error_kind(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return type(cause).__name__ if cause else "ActivityError"


def error_message(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return f"{type(cause).__name__ if cause else 'activity error'}: {cause or err}"


def error_code(err: ActivityError) -> str | None:
    """The provider's code an activity put in the error's details, else the error's kind."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        details = cause.details[0]
        if isinstance(details, dict) and details.get("code"):
            return str(details["code"])
    return cause.type if isinstance(cause, ApplicationError) else None
