"""`python -m endpoint` without Monetix settings says at start-up that it refuses Monetix callbacks
and which settings to set (tests/e2e/test_entry_points_exit_cleanly.py checks the real process)."""

import logging

from config import load_settings
from endpoint.__main__ import monetix_projects

BKASH = {"BKASH_BASE_URL": "https://tokenized.sandbox.bka.sh/v1.2.0-beta", "BKASH_APP_KEY": "k",
         "BKASH_APP_SECRET": "s", "BKASH_USERNAME": "u", "BKASH_PASSWORD": "p",
         "PAYMENTS_CALLBACK_BASE_URL": "https://shop.example/payments"}


def test_without_monetix_settings_one_line_names_the_settings_to_set(caplog):
    caplog.set_level(logging.INFO, logger="endpoint")
    assert monetix_projects(load_settings(BKASH)) == {}
    [line] = [r.getMessage() for r in caplog.records if r.name == "endpoint"]
    assert "will be refused" in line
    assert "MONETIX_PROJECT_ID" in line and "MONETIX_SECRET_KEY" in line


def test_with_monetix_settings_it_accepts_that_project_quietly(caplog):
    caplog.set_level(logging.INFO, logger="endpoint")
    settings = load_settings({**BKASH, "MONETIX_PROJECT_ID": "1234", "MONETIX_SECRET_KEY": "key"})
    assert monetix_projects(settings) == {1234: "key"}
    assert not [r for r in caplog.records if r.name == "endpoint"]
