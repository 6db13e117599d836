"""`python -m golive --out FILE` (or `python starter.py golive-log --out FILE`): bKash's go-live log
pack, the "formal sandbox test request of each API in text format" its review asks for
(../shared/reference/production.md §2), made by the project's own bKash client against the local
sandbox (the default) or the configured bKash sandbox credentials (--bkash-sandbox-credentials).
"""

from golive.cli import main, run

__all__ = ["main", "run"]
