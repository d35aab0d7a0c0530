"""The one error claims raise, and the words its messages are built from
(docs/protocol.md §3)."""

from __future__ import annotations

from typing import Any


class ClaimError(ValueError):
    """A claim that cannot be accepted, with the reason code of docs/protocol.md §3.

    ``code`` is the verdict reason (``malformed``, ``oversized``,
    ``issuer_not_signer``, ``label_invalid``, ``consent_missing``);
    ``detail`` refines ``malformed`` (``not_json``, ``duplicate_key``,
    ``not_base64``, ``payload_type_invalid``); ``field`` names the offending
    field (dotted path) or is None for the whole envelope.
    """

    def __init__(self, code: str, message: str, *, field: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message
        self.detail = detail

    @property
    def reasons(self) -> list[str]:
        return [self.code] + ([self.detail] if self.detail else [])


def malformed(field: str | None, why: str, detail: str | None = None) -> ClaimError:
    """A ``malformed`` ClaimError whose message starts with the field's name."""
    where = f"{field}: " if field else ""
    return ClaimError("malformed", f"{where}{why}", field=field, detail=detail)


def kind(value: Any) -> str:
    """The JSON kind of ``value`` in words ("an object", "a list", …)."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def show(value: Any) -> str:
    """``value`` for a message: a string quoted and cut to 60 characters, else its kind."""
    if value is None:
        return "nothing (missing or null)"
    text = repr(value) if isinstance(value, str) else kind(value)
    return text if len(text) <= 60 else text[:57] + "..."
