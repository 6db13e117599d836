"""bkash_token_budget_remaining{account} (README "Metrics"): the calls left of the two per rolling
hour, following each call at once, counting the calls other processes sharing the token store
made, and coming back as calls age out of the hour."""

from __future__ import annotations

from providers.bkash_tokens import FileTokenStore, TokenState
from tests.unit.test_bkash_client import Clock, FakeBkash, make
from worker_metrics import TokenBudgets, token_call_counter


class FakeMeter:
    """The two instruments the worker makes, recording what is set and added."""

    def __init__(self) -> None:
        self.gauge: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []

    def create_gauge(self, name, description=None, unit=None):
        meter = self

        class Gauge:
            def set(self, value, attrs):
                meter.gauge[attrs["account"]] = value
        return Gauge()

    def create_counter(self, name, description=None, unit=None):
        meter = self

        class Counter:
            def add(self, value, attrs):
                meter.calls.append((attrs["operation"], attrs["outcome"]))
        return Counter()


async def test_the_gauge_follows_each_token_call_and_the_rolling_hour(tmp_path):
    meter, clock, fake = FakeMeter(), Clock(), FakeBkash()
    budgets = TokenBudgets(meter)
    client = make(fake, clock, store=FileTokenStore(tmp_path / "token.json"),
                  on_call=token_call_counter(meter, "default", budgets))
    budgets.watch("default", client.tokens)
    assert meter.gauge == {"default": 2}
    await client.tokens.token()
    assert meter.gauge == {"default": 1} and meter.calls == [("grant", "ok")]
    clock.now += 51 * 60  # due for refresh
    await client.tokens.token()
    assert meter.gauge == {"default": 0} and fake.token_calls == ["grant", "refresh"]
    clock.now += 10 * 60  # the grant is now more than an hour old
    await budgets.refresh()
    assert meter.gauge == {"default": 1}


async def test_calls_another_process_recorded_in_the_shared_store_are_counted(tmp_path):
    meter, clock = FakeMeter(), Clock()
    store = FileTokenStore(tmp_path / "token.json")
    budgets = TokenBudgets(meter)
    client = make(FakeBkash(), clock, store=store)
    budgets.watch("brand2", client.tokens)
    assert meter.gauge == {"brand2": 2}
    # Another worker (or host) granted 5 minutes ago, and once more 2 hours ago (long forgotten).
    await store.save(TokenState(calls=[clock.now - 7200, clock.now - 300]))
    await budgets.refresh()
    assert meter.gauge == {"brand2": 1}
    assert client.tokens.token_calls_left == 1


async def test_no_gauge_when_no_budget_is_enforced(tmp_path):
    meter = FakeMeter()
    budgets = TokenBudgets(meter)
    budgets.watch("default", make(FakeBkash(), calls_per_hour=0).tokens)
    await budgets.refresh()
    assert meter.gauge == {}
