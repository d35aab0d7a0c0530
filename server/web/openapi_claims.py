"""The OpenAPI 3.1 part for the claim registry (docs/protocol.md §12):
``POST /v1/claims`` and the registry members of a verify result. Merged into
``labelcheck.web.openapi``'s document."""

from __future__ import annotations

import copy

from labelcheck.claims.envelope import MAX_SIGNATURES, PAYLOAD_TYPE

B64 = {"type": "string", "contentEncoding": "base64"}
HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
ENVELOPE = {"$ref": "#/components/schemas/ClaimEnvelope"}
# Standard base64 in its one canonical form (RFC 4648 §4: padded, zero pad bits).
CANONICAL_B64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ClaimsProblem"}}}

SCHEMAS = {
    "ClaimEnvelope": {
        "type": "object",
        "description": "A DSSE v1 envelope as the registry takes it (docs/protocol.md §2): the claim "
                       "payload's JSON in canonical standard base64, signed by the issuer's registered "
                       "producer key, and perhaps countersigned.",
        "required": ["payloadType", "payload", "signatures"],
        "properties": {
            "payloadType": {"const": PAYLOAD_TYPE},
            "payload": {"type": "string", "minLength": 4, "pattern": CANONICAL_B64,
                        "contentEncoding": "base64", "contentMediaType": "application/json"},
            "signatures": {"type": "array", "minItems": 1, "maxItems": MAX_SIGNATURES, "items": {
                "type": "object", "required": ["keyid", "sig"],
                "properties": {"keyid": {"type": "string", "pattern": "^[^\\s+]{1,200}\\+[0-9a-f]{8}$"},
                               "sig": {"type": "string", "pattern": "^[A-Za-z0-9+/]{85}[AQgw]==$",
                                       "description": "The 64-byte Ed25519 signature (RFC 8032)."}}}},
        },
    },
    "ClaimsRequest": {
        "description": "One claim envelope, or up to max_items of them. A claim's payload may carry, for an "
                       "image, content.pdq (its PDQ hash, 64 lowercase hex digits) and content.pdq_quality "
                       "(0-100).",
        "oneOf": [ENVELOPE, {"type": "object", "required": ["claims"], "additionalProperties": False,
                             "properties": {"claims": {"type": "array", "minItems": 1, "maxItems": 100,
                                                       "items": ENVELOPE}}}],
    },
    "ClaimAnswer": {
        "type": "object",
        "required": ["claim_id", "claim_digest", "receipt"],
        "properties": {
            "claim_id": {"type": "string"}, "claim_digest": HEX64,
            "receipt": {"type": "object", "required": ["index", "leaf_hash"],
                        "description": "The claim's ledger entry (the first one, when published again).",
                        "properties": {"index": {"type": "integer", "minimum": 0}, "leaf_hash": B64}},
        },
    },
    "ClaimsResponse": {
        "type": "object",
        "required": ["claims"],
        "properties": {"claims": {"type": "array", "items": {"$ref": "#/components/schemas/ClaimAnswer"}}},
    },
    "ClaimsProblem": {
        "description": "RFC 9457 problem details, with one member per refused claim.",
        "allOf": [{"$ref": "#/components/schemas/Problem"}, {"type": "object", "properties": {
            "claims": {"type": "array", "items": {"type": "object", "properties": {
                "index": {"type": "integer"}, "claim_id": {"type": ["string", "null"]},
                "reasons": {"type": "array", "items": {"type": "string"}}, "detail": {"type": "string"}}}}}}],
    },
    "RegistryMatch": {
        "type": "object",
        "description": "The registered claim the media matched: exactly (registry_exact, status verified) or "
                       "by PDQ within the threshold (registry_similar, status declared, never verified).",
        "required": ["match", "distance", "claim_id", "claim_digest", "key_id"],
        "properties": {
            "match": {"enum": ["exact", "similar"]},
            "distance": {"type": "integer", "minimum": 0, "maximum": 256,
                         "description": "Hamming distance between the PDQ hashes, bits of 256 (0 when exact)."},
            "claim_id": {"type": "string"}, "claim_digest": HEX64, "key_id": {"type": "string"},
            "content_sha256": HEX64, "entry": {"type": "integer", "minimum": 0},
            "producer": {"$ref": "#/components/schemas/ProducerRef"},
        },
    },
}

RESULT_PROPERTIES = {
    "registry": {"$ref": "#/components/schemas/RegistryMatch"},
    "distance": {"type": "integer", "minimum": 0, "maximum": 256,
                 "description": "With registry_similar: the PDQ distance to the registered image."},
}


def _problem(description: str) -> dict:
    return {"description": description, "content": PROBLEM}


PATHS = {
    "/v1/claims": {"post": {
        "summary": "Publish signed claims to the registry; each accepted claim becomes a claim ledger entry.",
        "description": "No token: a valid signature by a registered, unrevoked producer authenticates the "
                       "claim. Idempotent by claim id. A batch is accepted whole or not at all.",
        "operationId": "publishClaims",
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ClaimsRequest"}}}},
        "responses": {
            "201": {"description": "Registered (some claim was new).",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClaimsResponse"}}}},
            "200": {"description": "Every claim was registered already, with the same envelope.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClaimsResponse"}}}},
            "403": _problem("A claim is not signed by a registered, unrevoked producer."),
            "409": _problem("A claim id is registered for another envelope."),
            "422": _problem("A claim is malformed (a bad content.pdq included), or the body is not a claim."),
            **{str(c): {"$ref": f"#/components/responses/E{c}"} for c in (400, 405, 413, 415, 429, 500)},
        },
    }},
}


def merge(schemas: dict, max_items: int) -> None:
    """Add the registry's schemas to a document's copy of its schemas (in place)."""
    schemas.update(copy.deepcopy(SCHEMAS))
    schemas["ClaimsRequest"]["oneOf"][1]["properties"]["claims"]["maxItems"] = max_items
    schemas["Result"]["properties"].update(copy.deepcopy(RESULT_PROPERTIES))
