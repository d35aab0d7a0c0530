"""The verdict on one media item (docs/protocol.md §3): status, category, reasons.

A verdict records every check that ran, passed or failed, so a viewer sees
what was established and what was not. ``reasons`` holds machine codes;
``messages`` holds one human sentence per failed check, naming the field and
why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("verified", "invalid", "unverified", "declared", "none")
CATEGORIES = ("confirmed", "possible", "suspected")

# GB 45438 Annex E ``Label`` → the Measures' three branches.
LABEL_CATEGORY = {"1": "confirmed", "2": "possible", "3": "suspected"}


@dataclass
class Verdict:
    """One result per media item. ``to_dict`` is the wire shape."""

    status: str = "none"
    category: str | None = None
    reasons: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    producer: dict[str, Any] | None = None
    claim_id: str | None = None
    claim_digest: str | None = None
    key_id: str | None = None
    content_sha256: str | None = None
    media_type: str | None = None
    label: dict[str, Any] | None = None
    digital_source_type: str | None = None
    countersigners: list[str] = field(default_factory=list)

    def add(self, reason: str, message: str | None = None) -> None:
        """Record a check's outcome; a message marks a failure worth explaining."""
        if reason not in self.reasons:
            self.reasons.append(reason)
        if message and message not in self.messages:
            self.messages.append(message)

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "category": self.category,
            "reasons": list(self.reasons),
            "messages": list(self.messages),
            "producer": dict(self.producer) if self.producer else None,
            "claim_id": self.claim_id,
            "claim_digest": self.claim_digest,
            "key_id": self.key_id,
            "content_sha256": self.content_sha256,
            "media_type": self.media_type,
            "label": dict(self.label) if self.label else None,
            "digital_source_type": self.digital_source_type,
            "countersigners": list(self.countersigners),
        }
