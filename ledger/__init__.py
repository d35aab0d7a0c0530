"""labelcheck's audit ledger: an append-only, hash-chained RFC 9162 Merkle log
with C2SP signed checkpoints and offline-verifiable bundles (docs/protocol.md §4).

Modules: ``canonical`` (entry encoding), ``tree`` (RFC 9162 hashing over the
stored-hash layout), ``merkle`` (proofs; re-exports ``tree``), ``note`` and
``checkpoint`` (signed notes), ``store`` (SQLite), ``log`` (the Ledger),
``commit`` (appends, group commit, a signed checkpoint per commit, receipts),
``startup`` (the start-up check), ``scrub`` (the background re-hash),
``verify`` (full recompute), ``filters``
(export filters), ``bundle`` (the bundle format and its offline check, with
its parts in ``bundle_write``, ``bundle_complete``, ``bundle_filtered`` and
``bundle_report``).
"""

from .bundle import BundleError, BundleReport, verify_bundle
from .commit import Receipt
from .log import Ledger, LedgerDamaged, LedgerError
from .verify import VerifyReport

__all__ = [
    "BundleError",
    "BundleReport",
    "Ledger",
    "LedgerDamaged",
    "LedgerError",
    "Receipt",
    "VerifyReport",
    "verify_bundle",
]
