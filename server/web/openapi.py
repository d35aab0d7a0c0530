"""The OpenAPI 3.1 description of the labelcheck server (docs/protocol.md §5), served at
``GET /openapi.json``. It states what the server really answers: every
status code an operation can give, and problem+json (RFC 9457) for errors."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import lru_cache

from flask import Response, jsonify

from labelcheck.pipeline.config import Config
from labelcheck.pipeline.verify import server_version
from labelcheck.web import openapi_claims, openapi_tlog

PROBLEM = "application/problem+json"
NDJSON = "application/x-ndjson"

B64 = {"type": "string", "contentEncoding": "base64"}
RFC3339 = {"type": "string", "format": "date-time"}
NULLABLE_STR = {"type": ["string", "null"]}
EXPORT_WORD = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"}

ERRORS = {
    400: "The request is malformed (a query parameter, the JSON text).",
    401: "A bearer token is required.",
    403: "The bearer token is not the right one.",
    404: "No such resource.",
    405: "The method is not allowed on this path.",
    409: "The change conflicts with the registry's state.",
    413: "The body is over {max_body} or has over {max_items}.",
    415: "The body must be application/json.",
    422: "The JSON is well formed but not a valid request.",
    429: "Too many requests; retry after the Retry-After seconds.",
    500: "The server failed; no client input should cause this.",
    503: ("Not now: the ledger failed its checks or is unavailable (its database unreachable; retry after "
          "the Retry-After seconds), or no checkpoint is cosigned by a quorum yet (see detail)."),
}


def _error(code: int, limits: dict[str, str]) -> dict:
    response = {"description": ERRORS[code].format(**limits),
                "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    if code == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    if code == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return response


def _errors(*codes: int) -> dict:
    return {str(c): {"$ref": f"#/components/responses/E{c}"} for c in (*codes, 405, 500)}


def _json(schema_name: str, description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}}


def _query(name: str, description: str, minimum: int = 0) -> dict:
    return {"name": name, "in": "query", "required": True, "description": description,
            "schema": {"type": "integer", "minimum": minimum}}


def _optional(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


# RFC 3339 §5.6 in UTC, as the registry stores and compares times.
UTC_TIME = {"type": ["string", "null"], "format": "date-time", "pattern": "(?:[Zz]|[+-]00:00)$",
            "description": "An RFC 3339 time in UTC (Z or a zero offset), e.g. 2025-09-01T00:00:00Z."}

SCHEMAS = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
        },
    },
    "VerifyItem": {
        "type": "object",
        "description": "One media item; unknown members are ignored.",
        "properties": {
            "claim": {"description": "The claim as the page gives it: its DSSE envelope (a ClaimEnvelope), the "
                                     "envelope's JSON text, or base64url of that JSON (a data-labelcheck-claim "
                                     "value). Whatever is given is judged: one that is malformed or over 64 KiB "
                                     "gets status invalid and its reasons, not a refusal.",
                      "type": ["object", "string", "null"]},
            "media_url": {"type": ["string", "null"], "maxLength": 8192,
                          "description": "The server fetches it when no content_sha256 is given."},
            "content_sha256": {"type": ["string", "null"], "pattern": "^[0-9a-fA-F]{64}$",
                               "description": "SHA-256 of the bytes, as the client saw them."},
            "page_url": {"type": ["string", "null"], "maxLength": 8192,
                         "description": "Only scheme://host[:port] of it is kept."},
            "signals": {"type": ["object", "null"], "properties": {
                "meta": {"description": 'The content of <meta name="AIGC">.',
                         "oneOf": [{"type": "string", "maxLength": 16384}, {"type": "object"}, {"type": "array"},
                                   {"type": "null"}]},
            }},
        },
    },
    "VerifyRequest": {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "maxItems": 100,  # document() sets Config.max_items
                                 "items": {"$ref": "#/components/schemas/VerifyItem"}}},
    },
    "Receipt": {
        "type": "object",
        "required": ["index", "leaf_hash", "checkpoint", "inclusion"],
        "properties": {"index": {"type": "integer", "minimum": 0}, "leaf_hash": B64,
                       "checkpoint": {"type": "string", "description": "signed C2SP checkpoint note of the commit"},
                       "inclusion": {"type": "array", "items": B64,
                                     "description": "RFC 9162 inclusion proof of leaf_hash in checkpoint's tree"}},
    },
    "ProducerRef": {
        "type": ["object", "null"],
        "properties": {"name": {"type": "string"}, "key_id": {"type": "string"},
                       "filing": NULLABLE_STR},
    },
    "Signal": {
        "type": "object",
        "required": ["source", "status"],
        "properties": {"source": {"type": "string"}, "status": {"type": "string"},
                       "category": NULLABLE_STR, "reasons": {"type": "array", "items": {"type": "string"}},
                       "detail": {"type": "object"}},
    },
    "Result": {
        "type": "object",
        "required": ["status", "category", "reasons", "binding", "content_sha256", "receipt"],
        "properties": {
            "status": {"enum": ["verified", "invalid", "unverified", "declared", "none"]},
            "category": {"enum": ["confirmed", "possible", "suspected", None]},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "messages": {"type": "array", "items": {"type": "string"}},
            "producer": {"$ref": "#/components/schemas/ProducerRef"},
            "claim_id": NULLABLE_STR,
            "claim_digest": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
            "key_id": NULLABLE_STR,
            "binding": {"enum": ["client_sha256", "fetched", "none"]},
            "content_sha256": {"type": "object", "required": ["claimed", "observed"], "properties": {
                "claimed": {"type": ["string", "null"]}, "observed": {"type": ["string", "null"]}}},
            "media_type": NULLABLE_STR,
            "label": {"type": ["object", "null"]},
            "signals": {"type": "array", "items": {"$ref": "#/components/schemas/Signal"}},
            "signals_omitted": {"type": "integer", "minimum": 0,
                                "description": "Signals seen but not listed (a result lists at most 8)."},
            "conflicts": {"type": "array"},
            "fetch": {"type": ["object", "null"], "properties": {
                "ok": {"type": "boolean"}, "reason": NULLABLE_STR, "detail": NULLABLE_STR,
                "size": {"type": ["integer", "null"]}, "media_type": NULLABLE_STR}},
            "receipt": {"$ref": "#/components/schemas/Receipt"},
        },
    },
    "VerifyResponse": {
        "type": "object",
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}}},
    },
    "InclusionProof": {
        "type": "object",
        "required": ["index", "size", "hashes"],
        "properties": {"index": {"type": "integer"}, "size": {"type": "integer"},
                       "hashes": {"type": "array", "items": B64}},
    },
    "ConsistencyProof": {
        "type": "object",
        "required": ["from", "to", "hashes"],
        "properties": {"from": {"type": "integer"}, "to": {"type": "integer"},
                       "hashes": {"type": "array", "items": B64}},
    },
    "Producer": {
        "type": "object",
        "description": "A trust.json producer (docs/protocol.md §8).",
        "required": ["name", "vkey", "key_id", "filing", "roles", "revoked_at"],
        "properties": {
            "name": {"type": "string"}, "vkey": {"type": "string"}, "key_id": {"type": "string"},
            "filing": NULLABLE_STR,
            "roles": {"type": "array", "items": {"enum": ["producer", "propagator"]}},
            "revoked_at": {"type": ["string", "null"]},
        },
    },
    "ProducerInput": {
        "type": "object",
        "required": ["name", "vkey"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
            "vkey": {"type": "string", "description": "C2SP verifier key name+hash+base64(0x01||pub32)."},
            "key_id": {"type": "string"},
            "filing": {"type": ["string", "null"], "maxLength": 200},
            "roles": {"type": "array", "minItems": 1, "uniqueItems": True,
                      "items": {"enum": ["producer", "propagator"]}},
            "revoked_at": UTC_TIME,
        },
    },
    "RevokeInput": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"revoked_at": UTC_TIME},
    },
    "RegistryChange": {
        "type": "object",
        "required": ["producer", "key_id", "receipt"],
        "properties": {"producer": {"$ref": "#/components/schemas/Producer"},
                       "key_id": {"type": "string"},
                       "receipt": {"$ref": "#/components/schemas/Receipt"}},
    },
    "Keys": {
        "type": "object",
        "required": ["ledger_vkey", "origin", "producers"],
        "properties": {"ledger_vkey": {"type": "string"}, "origin": {"type": "string"},
                       "producers": {"type": "array", "items": {"$ref": "#/components/schemas/Producer"}},
                       "registry_version": {"type": "string"}},
    },
    "Health": {
        "type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}},
    },
    "Index": {
        "type": "object", "required": ["service", "version", "openapi"],
        "properties": {k: {"type": "string"} for k in
                       ("service", "version", "openapi", "health", "checkpoint", "keys", "tiles")},
    },
}

PATHS = {
    "/v1/verify": {"post": {
        "summary": "Verify media items; each result is appended to the ledger and carries its receipt.",
        "operationId": "verify",
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/VerifyRequest"}}}},
        "responses": {"200": _json("VerifyResponse", "One result per item, in order."),
                      **_errors(400, 413, 415, 422, 429)},
    }},
    "/v1/checkpoint": {"get": {
        "summary": "The latest signed checkpoint (C2SP tlog-checkpoint).",
        "operationId": "checkpoint",
        "responses": {"200": {"description": "A signed note.",
                              "content": {"text/plain; charset=utf-8": {"schema": {"type": "string"}}}},
                      **_errors()},
    }},
    "/v1/entries": {"get": {
        "summary": "Entries start (inclusive) to end (exclusive), at most 1000; clients page.",
        "operationId": "entries",
        "parameters": [_query("start", "First index."), _query("end", "One past the last index (≥ start).")],
        "responses": {"200": {"description": "One entry a line, exactly the Merkle leaf bytes.",
                              "content": {NDJSON: {"schema": {"type": "string"}}}},
                      **_errors(400)},
    }},
    "/v1/proof/inclusion": {"get": {
        "summary": "RFC 9162 §2.1.3 inclusion proof.",
        "operationId": "proofInclusion",
        "parameters": [_query("index", "Entry index (< size)."), _query("size", "Tree size (≤ the ledger's).", 1)],
        "responses": {"200": _json("InclusionProof", "The audit path, leaf to root."), **_errors(400)},
    }},
    "/v1/proof/consistency": {"get": {
        "summary": "RFC 9162 §2.1.4 consistency proof.",
        "operationId": "proofConsistency",
        "parameters": [_query("from", "Older tree size (> 0).", 1), _query("to", "Newer tree size (≥ from).", 1)],
        "responses": {"200": _json("ConsistencyProof", "The consistency proof."), **_errors(400)},
    }},
    "/v1/keys": {"get": {
        "summary": "The ledger's verifier key, its origin and the producer registry.",
        "operationId": "keys",
        "responses": {"200": _json("Keys", "Keys."), **_errors()},
    }},
    "/v1/producers": {"post": {
        "summary": "Register a producer key (admin).",
        "operationId": "addProducer",
        "security": [{"admin": []}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ProducerInput"}}}},
        "responses": {"201": _json("RegistryChange", "Registered and recorded on the ledger."),
                      **_errors(400, 401, 403, 409, 413, 415, 422)},
    }},
    "/v1/producers/{key_id}/revoke": {"post": {
        "summary": "Revoke a producer key (admin).",
        "operationId": "revokeProducer",
        "security": [{"admin": []}],
        "parameters": [{"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"required": False, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/RevokeInput"}}}},
        "responses": {"200": _json("RegistryChange", "Revoked and recorded on the ledger."),
                      **_errors(400, 401, 403, 404, 409, 413, 415, 422)},
    }},
    "/v1/export": {"get": {
        "summary": "The ledger bundle for offline verification (regulator).",
        "description": (
            "Without filters, a complete bundle (header `\"complete\": true`): the signed checkpoint, then "
            "every entry 0..N-1, which proves the log is complete. With any filter, a filtered bundle "
            "(`\"complete\": false` and the `\"filter\"` object): only the entries matching every filter "
            "given, one line each, `{\"entry\": <leaf bytes as a string>, \"inclusion\": [<b64>...], "
            "\"index\": i}`, each with its RFC 9162 §2.1.3 inclusion proof against the signed checkpoint. "
            "`labelcheck ledger verify-bundle` checks every proof and that each entry matches the filter; "
            "a filtered bundle cannot prove that no matching entry was left out (only a complete one "
            "proves completeness)."),
        "operationId": "export",
        "security": [{"regulator": []}],
        "parameters": [
            _optional("since", "Entries whose `time` is at or after this instant (RFC 3339).", RFC3339),
            _optional("until", "Entries whose `time` is before this instant (RFC 3339); later than `since`.",
                      RFC3339),
            _optional("key_id", "Entries about this producer key id: verifications by `key_id`, registry "
                      "changes by `producer.key_id`.", EXPORT_WORD),
            _optional("status", "Verifications with this status (`verified`, `invalid`, ...).", EXPORT_WORD),
            _optional("kind", "Entries of this kind.",
                      {"type": "string", "enum": ["verification", "registry", "claim"]}),
            _optional("consistency_from", "Filtered only: add the RFC 9162 §2.1.4 consistency proof from this "
                      "earlier tree size, so a verifier holding that checkpoint sees the log only grew.",
                      {"type": "integer", "minimum": 0}),
        ],
        "responses": {"200": {"description": "A header line, then every entry (complete) or each matching "
                                             "entry with its inclusion proof (filtered).",
                              "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
                              "content": {NDJSON: {"schema": {"type": "string"}}}},
                      **_errors(400, 401, 403)},
    }},
    "/healthz": {"get": {
        "summary": "Liveness.", "operationId": "healthz",
        "responses": {"200": _json("Health", "Alive."), **_errors()},
    }},
    "/": {"get": {
        "summary": "Where to go: with the demo on, a redirect to /demo/; else this API's entry points.",
        "operationId": "index",
        "responses": {"200": _json("Index", "The entry points."), "302": {"description": "To /demo/."},
                      **_errors()},
    }},
    "/openapi.json": {"get": {
        "summary": "This document.", "operationId": "openapi",
        "responses": {"200": {"description": "OpenAPI 3.1.",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      **_errors()},
    }},
}


_PATHS = {**PATHS, **openapi_claims.PATHS, **openapi_tlog.PATHS}


def size_text(n: int) -> str:
    """A byte count as people write it: "1 MiB", "64 KiB", "1000 bytes"."""
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} byte" if n == 1 else f"{n} bytes"


def _schemas(max_items: int) -> dict:
    schemas = copy.deepcopy(SCHEMAS)
    schemas["VerifyRequest"]["properties"]["items"]["maxItems"] = max_items
    openapi_claims.merge(schemas, max_items)
    return schemas


@lru_cache(maxsize=8)
def document(max_body: int, max_items: int) -> dict:
    """The document for a server refusing bodies over ``max_body`` bytes and
    verify requests over ``max_items`` items (its Config's limits)."""
    limits = {"max_body": size_text(max_body), "max_items": "1 item" if max_items == 1 else f"{max_items} items"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "labelcheck", "version": server_version().partition("/")[2],
                 "description": "Checkable AI-content labels: verify label claims against the "
                                "producer registry and the served bytes; every verification is "
                                "recorded on a verifiable audit ledger (RFC 9162, C2SP checkpoints)."},
        "paths": _PATHS,
        "components": {
            "schemas": _schemas(max_items),
            "responses": {f"E{c}": _error(c, limits) for c in ERRORS},
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer", "description": "data/admin.token"},
                "regulator": {"type": "http", "scheme": "bearer", "description": "data/regulator.token"},
            },
        },
    }


def view(cfg: Config) -> Callable[[], Response]:
    """The ``GET /openapi.json`` view of an app built from ``cfg``."""

    def serve() -> Response:
        return jsonify(document(cfg.max_body, cfg.max_items))

    return serve
