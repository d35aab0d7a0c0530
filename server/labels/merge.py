"""Merge a claim verdict with the label signals into one docs/protocol.md §3 result.

Status, first rule that applies:

1. a ``verified`` claim stays ``verified`` (what other signals say is
   reported as conflicts, never used to hide the signed claim);
2. an ``invalid`` claim, a C2PA ``invalid`` manifest or a ``malformed``
   label makes the result ``invalid``;
3. a ``trusted`` C2PA manifest verifies the media on its own: ``verified``;
4. an ``unverified`` claim (signature good, bytes not compared) stays so;
5. any readable unsigned label (GB 45438 in the file or the page, an IPTC
   digital source type, a C2PA manifest that is valid but whose signer is
   not trusted) gives ``declared``;
6. otherwise the claim's own status, or ``none``.

A declared signal whose source type says the media is *not* AI (e.g.
``digitalCapture``) gives ``declared`` with a null category: the file is
labelled, and the label says no AI.

Category: the claim's when the claim decides the status; otherwise the
deciding signals', preferring C2PA, then labels in the file, then IPTC,
then the page meta tag. IPTC and C2PA AI source types imply ``confirmed``
(see ``xmp.source_type_category``); GB 45438 ``Label`` 1/2/3 imply
``confirmed``/``possible``/``suspected``.

Conflicts (each adds ``signals_conflict`` and one human-readable line):
labels whose ``Label`` differ (claim or page vs embedded, or two embedded);
a source says AI while another says not AI; a claim for other bytes
(``content_mismatch``) beside a valid or trusted C2PA manifest.
"""

from __future__ import annotations

from . import aigc
from .signals import Signal
from .xmp import source_type_is_ai

PRIORITY = {
    "c2pa": 0,
    "gb45438_xmp": 1,
    "gb45438_exif": 1,
    "gb45438_mp4": 1,
    "gb45438_id3": 1,
    "gb45438_wav": 1,
    "iptc_dst": 2,
    "gb45438_meta": 3,
}
MAX_SIGNALS = 8  # signals listed in one result
MAX_CONFLICTS = 8  # conflict lines in one result
MAX_OPINIONS = 64  # distinct (source, Label, AI) opinions compared; readers give a few
MAX_REASONS = 32  # distinct reason codes taken from the signals
LABEL_TO_CATEGORY = aigc.CATEGORY
CATEGORY_TO_LABEL = {v: k for k, v in aigc.CATEGORY.items()}


def _claim_label(claim: dict) -> str | None:
    label = claim.get("label", claim.get("aigc"))
    if isinstance(label, dict):
        label = label.get("Label")
    if label in LABEL_TO_CATEGORY:
        return label
    return CATEGORY_TO_LABEL.get(claim.get("category"))


def _opinions(claim: dict | None, signals: list[Signal]) -> list[tuple[str, str | None, bool | None]]:
    """``(name, Label, says_ai)`` for every source that says something."""
    out = []
    if claim:
        label = _claim_label(claim)
        if label:
            out.append(("claim", label, True))
        dst = claim.get("digital_source_type")
        if dst:
            out.append(("claim digital_source_type", None, source_type_is_ai(dst)))
    for s in signals:
        if s.source.startswith("gb45438") and s.status == "declared":
            out.append((s.source, (s.detail.get("aigc") or {}).get("Label"), True))
        elif s.source == "iptc_dst":
            out.append((s.source, None, source_type_is_ai(s.detail.get("digital_source_type"))))
        elif s.source == "c2pa" and s.status in ("trusted", "valid"):
            out.append((s.source, None, source_type_is_ai((s.detail.get("c2pa") or {}).get("digital_source_type"))))
    return out


def _name(name: str, count: int) -> str:
    return name if count == 1 else f"{name} (x{count})"


def _said(names: dict[str, int]) -> str:
    """``a says`` or ``a and b say``, each name once with its count."""
    parts = [_name(n, c) for n, c in names.items()]
    verb = "says" if len(parts) == 1 and sum(names.values()) == 1 else "say"
    return f"{' and '.join(parts)} {verb}"


def conflicts(claim: dict | None, signals: list[Signal]) -> list[str]:
    """Human-readable lines naming the sources that disagree.

    Sources that say the same thing are grouped (one name, with a count
    when it says it more than once), so the lines grow with the number of
    distinct sources, never with the number of pairs of signals; at most
    ``MAX_CONFLICTS`` lines, the rest counted on a last line.
    """
    groups: dict[tuple[str, str | None, bool | None], int] = {}
    for op in _opinions(claim, signals):
        groups[op] = groups.get(op, 0) + 1
    ops = list(groups)[:MAX_OPINIONS]
    lines = []
    for i, (name_a, label_a, ai_a) in enumerate(ops):
        for name_b, label_b, ai_b in ops[i + 1 :]:
            a, b = _said({name_a: groups[name_a, label_a, ai_a]}), _said({name_b: groups[name_b, label_b, ai_b]})
            if label_a and label_b and label_a != label_b:
                lines.append(
                    f'{a} Label "{label_a}" ({LABEL_TO_CATEGORY.get(label_a, "?")}) '
                    f'but {b} Label "{label_b}" ({LABEL_TO_CATEGORY.get(label_b, "?")})'
                )
            elif ai_a is not None and ai_b is not None and ai_a != ai_b:
                say = {True: "AI-generated", False: "not AI-generated"}
                lines.append(f"{a} {say[ai_a]} but {b} {say[ai_b]}")
    if claim and "content_mismatch" in (claim.get("reasons") or []):
        bound = {}
        for s in signals:
            if s.source == "c2pa" and s.status in ("trusted", "valid"):
                bound[s.status] = bound.get(s.status, 0) + 1
        for status, count in bound.items():
            lines.append(f"the claim is for other bytes (content_mismatch) but {_name('the c2pa manifest', count)} ({status}) binds these bytes")
    if len(lines) > MAX_CONFLICTS:
        lines[MAX_CONFLICTS - 1 :] = [f"and {len(lines) - MAX_CONFLICTS + 1} more disagreements"]
    return lines


def listed(signals: list[Signal]) -> tuple[list[Signal], int]:
    """``(shown, omitted)``: at most ``MAX_SIGNALS`` signals in their order,
    failing ones first to be kept (they decide an ``invalid`` status), and
    how many were left out."""
    if len(signals) <= MAX_SIGNALS:
        return signals, 0
    rank = {"invalid": 0, "malformed": 0, "trusted": 1, "valid": 1}
    keep = sorted(sorted(range(len(signals)), key=lambda i: (rank.get(signals[i].status, 2), i))[:MAX_SIGNALS])
    return [signals[i] for i in keep], len(signals) - MAX_SIGNALS


def _best_category(signals) -> str | None:
    ranked = sorted((PRIORITY.get(s.source, 9), i, s) for i, s in enumerate(signals) if s.category)
    return ranked[0][2].category if ranked else None


def merge(claim: dict | None, signals: list[Signal]) -> dict:
    """The final ``status``, ``category``, ``reasons``, ``signals``, ``conflicts``
    and ``signals_omitted``.

    ``signals`` may be Signal objects or their ``to_dict()`` form. All of
    them decide the status, category, reasons and conflicts; at most
    ``MAX_SIGNALS`` are listed (see ``listed``) and ``signals_omitted``
    counts the others, so a result stays a few KB whatever a file holds.
    """
    if not signals:  # a claim alone (most items): what the branches below give it, without them
        claim = claim or {}
        category = claim.get("category")
        return {"status": claim.get("status") or "none",
                "category": (category or None) if claim.get("status") == "invalid" else category,
                "reasons": list(claim.get("reasons") or []), "signals": [], "conflicts": [], "signals_omitted": 0}
    return _merge(claim, signals)


def _merge(claim: dict | None, signals: list) -> dict:
    signals = [s if isinstance(s, Signal) else Signal(**s) for s in signals]
    claim_status = (claim or {}).get("status")
    reasons: list[str] = list((claim or {}).get("reasons") or [])
    seen = set(reasons)
    for s in signals:
        for r in s.reasons:
            if r not in seen and len(seen) < MAX_REASONS:
                seen.add(r)
                reasons.append(r)
    failing = [s for s in signals if s.status in ("invalid", "malformed")]
    trusted = [s for s in signals if s.status == "trusted"]
    declaring = [s for s in signals if s.status in ("declared", "valid")]

    if claim_status == "verified":
        status, category = "verified", claim.get("category")
    elif claim_status == "invalid" or failing:
        status = "invalid"
        category = (claim or {}).get("category") or _best_category(declaring + trusted)
    elif trusted:
        status, category = "verified", _best_category(trusted)
    elif claim_status == "unverified":
        status, category = "unverified", claim.get("category")
    elif declaring:
        status, category = "declared", _best_category(declaring)
    else:
        status, category = claim_status or "none", (claim or {}).get("category")

    found = conflicts(claim, signals)
    if found and "signals_conflict" not in reasons:
        reasons.append("signals_conflict")
    shown, omitted = listed(signals)
    return {
        "status": status,
        "category": category,
        "reasons": reasons,
        "signals": [s.to_dict() for s in shown],
        "conflicts": found,
        "signals_omitted": omitted,
    }
