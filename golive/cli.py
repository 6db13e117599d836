"""The command line: ``python -m golive --out FILE [--bkash-sandbox-credentials]``, also reached as
``python starter.py golive-log ...`` (starter.py only dispatches here: it may not import providers
or the sandbox)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import runtime_exit
from config import ConfigError
from golive.pack import render, summary
from golive.scenarios import Run, run_all
from golive.target import GoliveError, configured_bkash, local_sandbox
from providers.bkash_errors import BkashError

DESCRIPTION = ("bKash's go-live log pack: every API bKash's review asks for, and the real answers "
               "to its error codes, as the project's client sends and receives them (redacted)")


@dataclass
class PackResult:
    path: Path
    run: Run  # unredacted traffic included: for tests, never written anywhere
    summary: str


def build_parser(prog: str = "python -m golive") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="the pack to write (plain text); its directory must exist")
    parser.add_argument("--bkash-sandbox-credentials", action="store_true",
                        help="call bKash with the configured BKASH_* credentials (bKash's own "
                        "sandbox; a person approves each payment on bKash's page) instead of the "
                        "local sandbox golive starts itself")
    return parser


def checked_out_path(value: str) -> Path:
    path = Path(value).expanduser()
    if path.is_dir():
        raise GoliveError(f"--out {value}: is a directory; give a file name, e.g. "
                          f"{path / 'bkash-golive-log.txt'}")
    parent = path.parent
    if not parent.is_dir():
        raise GoliveError(f"--out {value}: the directory {parent} does not exist; create it or "
                          "write the pack elsewhere")
    if not os.access(parent, os.W_OK):
        raise GoliveError(f"--out {value}: the directory {parent} is not writable")
    return path


async def write_pack(out: Path, *, configured: bool = False) -> PackResult:
    """Run every call against the target, then write the redacted pack to ``out``."""
    async with (configured_bkash() if configured else local_sandbox()) as target:
        run = await run_all(target)
    text = render(run)
    # Whole or not at all: a run stopped half-way must not leave a pack that looks complete.
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(out)
    return PackResult(out, run, summary(run))


async def run(argv: list[str] | None = None, prog: str = "python -m golive") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        out = checked_out_path(args.out)
        result = await write_pack(out, configured=args.bkash_sandbox_credentials)
    except GoliveError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ConfigError as err:
        print(f"error: --bkash-sandbox-credentials reads the worker's settings: {err}",
              file=sys.stderr)
        return 2
    except BkashError as err:
        # The client's messages name the payment and the setting to check, never a secret.
        print(f"error: the go-live run stopped, no pack written: {err}", file=sys.stderr)
        return 2
    print(result.path)
    print(f"golive: {result.summary}")
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m golive") -> int:
    return runtime_exit.run(run(argv, prog))
