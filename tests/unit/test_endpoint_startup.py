"""`python -m endpoint` without Monetix settings says at start-up that it refuses Monetix callbacks
and which settings to set (tests/e2e/test_entry_points_exit_cleanly.py checks the real process)."""

import logging

from config import load_endpoint_settings
from endpoint.__main__ import monetix_projects

# The endpoint needs no bKash secret: only the Temporal connection, its result-link secret and
# Monetix verification keys.
BKASH: dict[str, str] = {"PAYMENTS_LINK_SECRET": "a-result-link-secret-of-32-chars-or-more"}


def test_without_monetix_settings_one_line_names_the_settings_to_set(caplog):
    caplog.set_level(logging.INFO, logger="endpoint")
    assert monetix_projects(load_endpoint_settings(BKASH)) == {}
    [line] = [r.getMessage() for r in caplog.records if r.name == "endpoint"]
    assert "will be refused" in line
    assert "MONETIX_PROJECT_ID" in line and "MONETIX_SECRET_KEY" in line


def test_with_monetix_settings_it_accepts_that_project_quietly(caplog):
    caplog.set_level(logging.INFO, logger="endpoint")
    settings = load_endpoint_settings({**BKASH, "MONETIX_PROJECT_ID": "1234", "MONETIX_SECRET_KEY": "key"})
    assert monetix_projects(settings) == {1234: "key"}
    assert not [r for r in caplog.records if r.name == "endpoint"]


def test_the_endpoint_settings_need_no_bkash_secret_and_name_a_missing_key():
    import pytest

    from config import ConfigError

    assert load_endpoint_settings(BKASH).monetix_projects == {}
    with pytest.raises(ConfigError, match="MONETIX_SECRET_KEY is not set"):
        load_endpoint_settings({**BKASH, "MONETIX_PROJECT_ID": "1234"})
