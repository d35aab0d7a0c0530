"""The signal type every label reader returns (docs/protocol.md §3 ``signals``)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Signal.status values.
STATUSES = ("declared", "trusted", "valid", "invalid", "malformed")


@dataclass
class Signal:
    """One label seen in or beside a media item.

    ``source``: ``gb45438_xmp`` (XMP ``TC260:AIGC`` in JPEG, PNG or WebP),
    ``gb45438_exif`` (EXIF UserComment), ``gb45438_mp4`` (``moov/udta/meta``
    item AIGC), ``gb45438_id3`` (ID3v2 ``TXXX`` described AIGC),
    ``gb45438_wav`` (RIFF chunk AIGC), ``gb45438_meta`` (a page's
    ``<meta name="AIGC">``), ``iptc_dst`` (XMP ``Iptc4xmpExt:DigitalSourceType``)
    or ``c2pa`` (a C2PA manifest store).

    ``status``: ``declared`` (a readable unsigned label), ``trusted`` (C2PA,
    signer chains to a configured anchor), ``valid`` (C2PA valid, signer not
    trusted), ``invalid`` (C2PA validation failed) or ``malformed`` (a label or
    the metadata holding it could not be read). ``category`` is the GB 45438
    branch the signal implies (``confirmed``/``possible``/``suspected``) or
    None. ``reasons`` are machine codes; ``detail`` carries what was read.
    """

    source: str
    status: str
    category: str | None = None
    reasons: list[str] = field(default_factory=list)
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "status": self.status,
            "category": self.category,
            "reasons": list(self.reasons),
            "detail": self.detail,
        }


class Malformed(Exception):
    """Raised inside the readers when metadata cannot be read.

    ``code`` becomes the signal's second reason (after ``malformed``);
    ``source`` is the signal source the damaged metadata would have fed.
    """

    def __init__(self, source: str, code: str, message: str):
        super().__init__(message)
        self.source = source
        self.code = code

    def signal(self) -> Signal:
        return malformed(self.source, self.code, str(self))


def malformed(source: str, code: str, message: str, **detail) -> Signal:
    """A ``malformed`` signal with reasons ``["malformed", code]``."""
    return Signal(source, "malformed", None, ["malformed", code], {"error": message, **detail})
