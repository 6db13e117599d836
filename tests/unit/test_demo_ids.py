"""`make demo`'s invoice numbers and payment ids (and so its workflow ids) are plain: letters,
digits and '-', so they can be typed in `python starter.py status ...`."""

import re
from types import SimpleNamespace

import demo

PLAIN = re.compile(r"^[A-Za-z0-9-]+$")


class RecordingDemo(demo.Demo):
    def key(self, name: str) -> str:
        key = super().key(name)
        self.keys.append(key)
        return key


def test_every_scenario_id_is_plain():
    d = RecordingDemo(client=None, settings=SimpleNamespace(
        callback_base_url="http://127.0.0.1:8080", task_queue="payments"),
        sandbox=None, customer=None, monetix=None, monetix_customer=None, run_id="a1b2c3")
    d.keys = []
    scenarios = [*demo.bkash_scenarios(d), *demo.monetix_scenarios(d)]
    for coroutine in scenarios:
        coroutine.close()
    assert len(d.keys) == len(scenarios) == len(set(d.keys))
    assert all(PLAIN.match(k) and k.startswith("DEMO-a1b2c3-") for k in d.keys), d.keys
    assert "DEMO-a1b2c3-account-omitted-clarification-success" in d.keys


def test_plain_id_drops_spaces_arrows_and_brackets():
    assert demo.plain_id("decline (insufficient balance)") == "decline-insufficient-balance"
    assert demo.plain_id("final callback lost → status polling") == \
        "final-callback-lost-status-polling"
