"""Signed label claims: DSSE v1 envelopes around a JSON payload (docs/protocol.md §2, §3).

Modules: :mod:`.errors` (ClaimError), :mod:`.strictjson` (RFC 8259 without
its loopholes), :mod:`.envelope` (DSSE envelope, PAE, the
``data-labelcheck-claim`` attribute), :mod:`.payload` (schema checks,
``build_payload``), :mod:`.parse` (``parse_envelope``), :mod:`.sign`,
:mod:`.verify` (``verify_claim``), :mod:`.verdict`, :mod:`.trust` (the
trust registry).
"""

from labelcheck.claims.envelope import (
    MAX_ENVELOPE_BYTES, MAX_SIGNATURES, PAYLOAD_TYPE, claim_digest, from_data_attribute, pae,
    to_data_attribute,
)
from labelcheck.claims.errors import ClaimError
from labelcheck.claims.parse import ParsedClaim, parse_envelope
from labelcheck.claims.payload import AIGC_REQUIRED, CONSENT_KINDS, SYNTHESIS_KINDS, build_payload
from labelcheck.claims.sign import add_signature, sign_envelope
from labelcheck.claims.strictjson import dumps_compact, loads_strict
from labelcheck.claims.verdict import LABEL_CATEGORY, Verdict
from labelcheck.claims.verify import CLOCK_SKEW, FAILURES, verify_claim

__all__ = [
    "AIGC_REQUIRED", "CLOCK_SKEW", "CONSENT_KINDS", "FAILURES", "LABEL_CATEGORY",
    "MAX_ENVELOPE_BYTES", "MAX_SIGNATURES", "PAYLOAD_TYPE", "SYNTHESIS_KINDS",
    "ClaimError", "ParsedClaim", "Verdict",
    "add_signature", "build_payload", "claim_digest", "dumps_compact", "from_data_attribute",
    "loads_strict", "pae", "parse_envelope", "sign_envelope", "to_data_attribute", "verify_claim",
]
