"""Reading a workflow's history as whoever holds the payload key does (the codec's view)."""

from __future__ import annotations

import json


async def history_text(stack, workflow_id: str, run_id: str | None = None,
                       codec=None) -> str:
    """A workflow's history as JSON, with every payload decrypted and decoded (as the Web UI shows
    it through the codec server; the JSON holds them encrypted, in base64)."""
    from google.protobuf import json_format
    from temporalio.api.common.v1 import Payload

    text = (await stack.client.get_workflow_handle(workflow_id, run_id=run_id)
            .fetch_history()).to_json()
    found: list[Payload] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and "metadata" in node:
                found.append(json_format.ParseDict(node, Payload(), ignore_unknown_fields=True))
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(text))
    codec = codec or stack.client.data_converter.payload_codec
    plain = await codec.decode(found) if codec and found else found
    return "\n".join([text, *(p.data.decode("utf-8", "replace") for p in plain)])
