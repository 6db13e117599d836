"""Issue 12 §3, rotation: a payment written with the old key and one written after the new key was
put first both decode and replay with the rotated key list; without the old key, the old history
names the key id it needs (nothing is lost: add the key back)."""

from __future__ import annotations

import pytest
from temporalio.client import Client
from temporalio.worker import Replayer

from merchant_client.encryption import (
    KEY_ID_METADATA,
    EncryptionKeys,
    data_converter,
    load_keys,
    new_key_line,
)
from tests.support.bkash import pay, result
from worker import WORKFLOWS
from tests.conftest import running_stack


# The key put first by the rotation (the secret scan of test_zz_no_secrets_anywhere reads the
# payment written with it too).
ROTATED_KEY = new_key_line("rotated-2")


def key_ids(history) -> set[str]:
    ids = set()
    for event in history.events:
        attrs = event.workflow_execution_started_event_attributes
        for p in attrs.input.payloads:
            ids.add(p.metadata.get(KEY_ID_METADATA, b"").decode())
    return ids - {""}


async def test_histories_of_the_old_and_the_new_key_both_replay_after_rotation(
        stack, dev_env, bkash_sandbox_url, monetix_sandbox_url, http, shared_activities):
    old = load_keys()
    assert old is not None
    old_line = ",".join(f"{i}:{__import__('base64').b64encode(k).decode()}"
                        for i, k in old.keys.items())
    rotated = EncryptionKeys.parse(f"{ROTATED_KEY},{old_line}", "test")

    req_old, url_old = await pay(stack)  # written with the session's (old) key
    await stack.customer.cancel(url_old.bkash_url)
    await result(stack, req_old)

    client = await Client.connect(dev_env.client.service_client.config.target_host,
                                  data_converter=data_converter(rotated))
    env = type("Env", (), {"client": client})()
    async with running_stack(env, bkash_sandbox_url, monetix_sandbox_url, http,
                             shared_activities) as rot:
        req_new, url_new = await pay(rot)  # written after the rotation
        await rot.customer.cancel(url_new.bkash_url)
        assert (await result(rot, req_new)).stage.value == "CANCELLED"

    old_history = await client.get_workflow_handle(req_old.workflow_id).fetch_history()
    new_history = await client.get_workflow_handle(req_new.workflow_id).fetch_history()
    assert key_ids(old_history) == {old.current} and key_ids(new_history) == {"rotated-2"}
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(rotated))
    await replayer.replay_workflow(old_history)
    await replayer.replay_workflow(new_history)
    # The old key removed too early: the old history says which key it needs.
    only_new = EncryptionKeys.parse(new_key_line("rotated-2"), "test")
    with pytest.raises(Exception) as err:
        await Replayer(workflows=WORKFLOWS,
                       data_converter=data_converter(only_new)).replay_workflow(old_history)
    # (the failure's message is itself encoded in history; its type is plain, and the worker's
    # log line names the key id)
    assert "UnknownKeyError" in str(err.value)
