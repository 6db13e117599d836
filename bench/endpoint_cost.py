"""`python -m bench --phase endpoint-cost` (or `make bench ARGS="--phase endpoint-cost"`): what one
Monetix callback costs the merchant endpoint, for the worst shapes found (issue 9), at the largest
body the endpoint reads. No Temporal, no network: the endpoint's own parse-and-verify step
(endpoint.monetix_callbacks.examine, which runs in a worker thread) and the whole ASGI request.

For each shape: the answer, CPU ms per KB of body (process time, median of a few runs), peak
memory per KB (tracemalloc, one run), the signing string's size and the leaves flattened. Under a
minute on a laptop core; the README ("Security: what the endpoint refuses") quotes a run.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable

import httpx

from endpoint.app import create_app
from endpoint.limits import MAX_BODY_BYTES
from endpoint.monetix_callbacks import CallbackRefused, examine
from providers.monetix_signing import CALLBACK_BOUNDS, Meter, sign

PROJECT, SECRET = 1234, "bench-secret"
# Plausible (Base64 of 64 bytes) but wrong: what an attacker without the key sends, so that every
# check up to the HMAC comparison runs.
FORGED = sign({"x": 1}, "not-the-key")
LIMIT = MAX_BODY_BYTES - 64  # bodies as large as the endpoint reads, with room for the envelope


def _body(extra: dict, *, signed: bool = False) -> bytes:
    data = {"project_id": PROJECT, "payment": {"id": "bench-1", "status": "success"}, **extra}
    data["signature"] = sign(data, SECRET) if signed else FORGED
    return json.dumps(data, separators=(",", ":")).encode()


def _fill(make: Callable[[int], dict], *, signed: bool = False) -> bytes:
    """The largest ``make(n)`` body under LIMIT (binary search on n)."""
    lo, hi = 1, 1
    while len(_body(make(hi), signed=signed)) <= LIMIT:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if len(_body(make(mid), signed=signed)) <= LIMIT else (lo, mid)
    return _body(make(lo), signed=signed)


def _nested(depth: int, key_chars: int, leaf) -> dict:
    node = leaf
    for level in range(depth):
        node = {f"{level:02d}" + "k" * (key_chars - 2): node}
    return node


def shapes() -> dict[str, bytes]:
    b = CALLBACK_BOUNDS
    half = b.value_chars // 2
    return {
        # The finding: one long key above a long array (key repeated on every leaf).
        "long key above an array": _body({"K" * (LIMIT - 12_000): [0] * 5_000}),
        # The longest keys allowed, nested as deep as allowed, above an array: the signing string
        # outgrows the body fastest; padded so the signing-string cap (2 × body) is as high as it gets.
        "deepest longest keys above an array": _fill(lambda n: {
            "pad": ["p" * half] * 6, **_nested(b.depth - 1, b.key_chars, [0] * n)}),
        # The other finding: a flat array of zeros (0.66 MB there; 64 KiB is all we read).
        "flat array of zeros": _fill(lambda n: {"z": [0] * n}),
        "object of many keys": _fill(lambda n: {f"k{i}": 0 for i in range(n)}),
        # As many leaves as allowed, in an 11+ item array (byte, natural and line orders all differ:
        # three sorts, three HMACs), values making up the rest of the body: the most a forger gets.
        "most leaves allowed, all orders differ": _fill(lambda n: {
            "a": ["v" * n] * (b.leaves - 3)}),
        "one value as long as allowed": _fill(lambda n: {"v": ["x" * b.value_chars] * n}),
        "nesting as deep as JSON goes": b'{"project_id":1234,"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}",
        # What Monetix really sends, and the largest body that verifies.
        "a real callback (signed)": _body({
            "operation": {"id": 5028800010128225, "type": "sale", "status": "success", "code": "0",
                          "message": "Success", "sum_initial": {"amount": 100000, "currency": "BDT"},
                          "provider": {"id": 6, "payment_id": "TR0011x", "auth_code": ""}},
            "display_data": [{"type": "add_info", "title": "account_number", "data": "01700000000"}],
            "customer": {"id": "cust-42"}, "account": {"number": "01712345678"}}, signed=True),
        "largest body that verifies (signed)": _fill(lambda n: {
            "a": ["v" * n] * (b.leaves - 3)}, signed=True),
    }


def _examine(raw: bytes, meter: Meter | None = None) -> str:
    try:
        examine(raw, {PROJECT: SECRET}, meter)
        return "verified"
    except CallbackRefused as exc:
        return f"{exc.status} {exc.reason}"


def measure(raw: bytes, runs: int = 5) -> dict:
    meter = Meter()
    answer = _examine(raw, meter)
    cpu = []
    for _ in range(runs):
        start = time.process_time()
        _examine(raw)
        cpu.append(time.process_time() - start)
    tracemalloc.start()
    _examine(raw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    kb = len(raw) / 1024
    return {"body_kb": round(kb, 1), "answer": answer, "cpu_ms": round(statistics.median(cpu) * 1e3, 2),
            "cpu_ms_per_kb": round(statistics.median(cpu) * 1e3 / kb, 3),
            "peak_kb": round(peak / 1024, 1), "peak_kb_per_kb": round(peak / 1024 / kb, 2),
            "leaves": meter.leaves, "signing_chars": meter.line_chars, "hashed_bytes": meter.hashed_bytes,
            "macs": meter.macs}


async def http_answers(bodies: dict[str, bytes]) -> dict[str, int]:
    """The whole request through the app (middleware, streaming read, thread): the status code."""
    app = create_app(None, monetix_projects={PROJECT: SECRET})  # type: ignore[arg-type]
    answers = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e") as http:
        for name, raw in bodies.items():
            if "signed" in name:
                continue  # a verified callback goes on to Temporal; not this phase's business
            answers[name] = (await http.post("/monetix/callback", content=raw)).status_code
        answers["body over the limit (1 MiB)"] = (await http.post(
            "/monetix/callback", content=b"x" * (1 << 20))).status_code
    return answers


def run(out: str | None = None) -> dict:
    bodies = shapes()
    rows = {name: measure(raw) for name, raw in bodies.items()}
    statuses = asyncio.run(http_answers(bodies))
    print(f"endpoint cost per Monetix callback (body limit {MAX_BODY_BYTES // 1024} KiB; bounds: "
          f"{CALLBACK_BOUNDS.depth} levels, {CALLBACK_BOUNDS.leaves} leaves, "
          f"{CALLBACK_BOUNDS.key_chars}-char keys, {CALLBACK_BOUNDS.value_chars}-char values, "
          "signing string ≤ 2 × body + 1 KiB)\n")
    head = (f"{'shape':<40} {'KB':>5}  {'answer':<32} {'HTTP':>4} {'CPU ms':>7} {'ms/KB':>6} "
            f"{'peak KB':>8} {'KB/KB':>6} {'leaves':>6} {'signed':>7} {'MACs':>4}")
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        print(f"{name:<40} {r['body_kb']:>5} {r['answer'][:32]:<32} {statuses.get(name, '-'):>4} "
              f"{r['cpu_ms']:>7} {r['cpu_ms_per_kb']:>6} {r['peak_kb']:>8} {r['peak_kb_per_kb']:>6} "
              f"{r['leaves']:>6} {r['signing_chars']:>7} {r['macs']:>4}")
    print(f"{'body over the limit (1 MiB)':<40} {1024:>5} {'413 too large (read stops)':<32} "
          f"{statuses['body over the limit (1 MiB)']:>4}")
    # Per KB at the size limit (a tiny body's fixed cost would dominate a per-KB figure).
    large = {name: r for name, r in rows.items() if r["body_kb"] >= 16}
    cpu_name = max(large, key=lambda n: large[n]["cpu_ms"])
    mem_name = max(large, key=lambda n: large[n]["peak_kb"])
    worst = {"cpu_ms": large[cpu_name]["cpu_ms"], "cpu_ms_per_kb": large[cpu_name]["cpu_ms_per_kb"],
             "cpu_shape": cpu_name, "peak_kb": large[mem_name]["peak_kb"],
             "peak_kb_per_kb": large[mem_name]["peak_kb_per_kb"], "peak_shape": mem_name}
    print(f"\nworst request: {worst['cpu_ms']} ms CPU = {worst['cpu_ms_per_kb']} ms per KB ({cpu_name}); "
          f"{worst['peak_kb']} KB peak = {worst['peak_kb_per_kb']} KB per KB ({mem_name})")
    result = {"shapes": rows, "http": statuses, "worst": worst}
    if out:
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
    return result
