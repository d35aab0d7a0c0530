"""Labels inside media: GB 45438 implicit labels, IPTC digital source type, C2PA.

``read_labels`` finds every label a file carries and returns one ``Signal``
each; ``page_meta_signal`` reads a page's ``<meta name="AIGC">``; ``merge``
folds a claim verdict and the signals into the docs/protocol.md §3 result, naming
conflicts; ``embed.embed_label`` writes a label losslessly.

Reason codes on signals: ``gb45438_label`` and ``iptc_digital_source_type``
(declared labels); ``c2pa_trusted``, ``c2pa_untrusted``, ``c2pa_invalid``
followed by the C2PA failure codes (e.g. ``assertion.dataHash.mismatch``,
or ``manifest.unreadable`` when the reference library cannot parse the
store, ``trust_anchors_unreadable`` when the anchors file cannot be read);
``malformed`` followed by one of ``label_invalid_json``,
``label_not_object``, ``label_invalid``, ``label_too_large``,
``xmp_invalid``, ``xmp_dtd_refused``, ``xmp_too_large``, ``exif_invalid``,
``truncated``, ``bad_length``, ``bad_marker``, ``bad_signature``,
``bad_crc``, ``bad_encoding``, ``too_large``, ``too_many_segments``,
``unsupported``, ``unreadable``, or ``limit`` (the file's reading budget
ran out: ``detail.limit`` is ``bytes``, ``items``, ``elements``, ``time``,
or ``depth`` for XMP property elements nested too deep; see ``budget``).

Bounds: reading one file is linear in the metadata it reads and stops at
the budget in ``budget`` (32 MB of metadata read or inflated, 64 signals,
200,000 XML elements, 2 s). ``merge`` lists at most ``merge.MAX_SIGNALS``
(8) signals, failing ones first, and counts the others in the result's
``signals_omitted``; conflicts are grouped by source, at most
``merge.MAX_CONFLICTS`` (8) lines.
"""

from __future__ import annotations

from .embed import LabelError, embed_label
from .merge import merge
from .read import read_labels
from .signals import Signal
from .xmp import label_signal


def page_meta_signal(content: str) -> Signal:
    """The signal of a page's ``<meta name="AIGC" content=…>`` (docs/protocol.md §2 item 3).

    Accepts the inner object and the ``{"AIGC": {...}}`` wrapper; anything
    else gives a ``malformed`` signal.
    """
    if not isinstance(content, str):
        content = "" if content is None else str(content)
    return label_signal("gb45438_meta", content)


__all__ = ["Signal", "read_labels", "page_meta_signal", "merge", "embed_label", "LabelError"]
