"""Runs after the other e2e tests (file order) and scans everything they left on the dev server:
no bKash app_secret, password or token, and no Monetix secret key, may appear in any workflow
history, search attribute, memo, log line or error message."""

from merchant_client import report_service_delivered
from tests.conftest import MONETIX, SANDBOX
from merchant_client.encryption import AesGcmCodec, EncryptionKeys, load_keys
from tests.e2e.test_key_rotation import ROTATED_KEY
from tests.support.histories import history_text
from tests.support.bkash import pay, result, wait_for_stage
from contracts.bkash import BkashStage


async def test_no_secret_or_token_appears_in_histories_attributes_or_logs(
        stack, shared_activities, collected_logs):
    # One full payment of our own, so the scan never looks at an empty server.
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await report_service_delivered(stack.client, req.invoice_number)
    await result(stack, req)

    tokens = shared_activities[0].__self__._client.tokens
    secrets = {"app_secret": SANDBOX.app_secret, "password": SANDBOX.password,
               "id_token": tokens.state.id_token, "refresh_token": tokens.state.refresh_token,
               "monetix_secret_key": MONETIX.secret_key,
               "other_project_key": MONETIX.other_projects[4321]}
    assert all(secrets.values()), "the session never obtained a token: the scan would be vacuous"

    # Every key the session wrote with: its own and the rotation test's.
    keys = load_keys()
    codec = AesGcmCodec(EncryptionKeys(current=keys.current,
                                       keys={**keys.keys, **EncryptionKeys.parse(
                                           ROTATED_KEY, "rotation").keys}))
    texts: list[str] = []
    count = 0
    async for wf in stack.client.list_workflows():
        count += 1
        handle = stack.client.get_workflow_handle(wf.id, run_id=wf.run_id)
        # Decrypted, as whoever holds the payload key (the codec server's users) reads it: a
        # secret must not be there either, encrypted or not.
        texts.append(await history_text(stack, wf.id, run_id=wf.run_id, codec=codec))
        desc = await handle.describe()
        texts.append(repr(desc.typed_search_attributes))
        texts.append(repr(await desc.memo()))
    assert count >= 20
    texts.extend(collected_logs)
    blob = "\n".join(texts)
    for name, value in secrets.items():
        assert value not in blob, f"the {name} leaked"
