"""BKASH_TOKEN_STORE and its companions: validated at start with a message naming the setting,
never echoing the value (a Redis URL may carry a password)."""

import pytest

from config import ConfigError, load_settings
from tests.unit.test_config import GOOD


def test_the_default_store_is_this_hosts_file_and_empty_file_means_this_process():
    assert load_settings(GOOD).bkash_token_store.get_secret_value() == "file"
    assert load_settings({**GOOD, "BKASH_TOKEN_CACHE_FILE": ""}) \
        .bkash_token_store.get_secret_value() == "memory"


def test_a_redis_url_with_a_password_is_accepted_and_never_printed():
    url = "rediss://payments:s3cret-redis-pw@redis.internal:6380/3"
    s = load_settings({**GOOD, "BKASH_TOKEN_STORE": url, "BKASH_TOKEN_LEASE_SECONDS": "40",
                       "BKASH_TOKEN_REFRESH_AFTER_SECONDS": "3300"})
    assert s.bkash_token_store.get_secret_value() == url
    assert s.bkash_token_lease_seconds == 40 and s.bkash_token_refresh_after_seconds == 3300
    assert "s3cret-redis-pw" not in repr(s) and "s3cret-redis-pw" not in str(s)


@pytest.mark.parametrize("value, says", [
    ("memcached://host:11211", "BKASH_TOKEN_STORE must be file (the default), memory, or a "
                               "redis://"),
    ("redis://", "BKASH_TOKEN_STORE must be"),
    ("redis://:pw-do-not-echo@host:notaport/0", "BKASH_TOKEN_STORE: the Redis URL's port"),
])
def test_a_malformed_store_is_named_without_its_value(value, says):
    with pytest.raises(ConfigError) as info:
        load_settings({**GOOD, "BKASH_TOKEN_STORE": value})
    assert says in str(info.value)
    assert "pw-do-not-echo" not in str(info.value)


def test_redis_needs_the_host_file_as_its_fallback():
    with pytest.raises(ConfigError) as info:
        load_settings({**GOOD, "BKASH_TOKEN_STORE": "redis://h:6379/0",
                       "BKASH_TOKEN_CACHE_FILE": ""})
    assert "needs the per-host token file" in str(info.value)


@pytest.mark.parametrize("name", ["BKASH_TOKEN_LEASE_SECONDS", "BKASH_TOKEN_REFRESH_AFTER_SECONDS"])
def test_token_timings_must_be_positive_numbers(name):
    with pytest.raises(ConfigError) as info:
        load_settings({**GOOD, name: "-3"})
    assert f"{name} must be a positive number" in str(info.value)
