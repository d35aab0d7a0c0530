"""The OpenAPI description of the log as C2SP tlog-tiles under ``/tlog/``
(docs/protocol.md §10). A tile index is written as several path segments
(``x001/x234/067``, ``.p/<W>`` for a partial tile), which an OpenAPI path
parameter cannot hold: the parameters below say so, and the C2SP spec is
the reference for their form."""

from __future__ import annotations

OCTETS = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
NOT_FOUND = {"$ref": "#/components/responses/E404"}


def _index(name: str, what: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
            "description": f"{what}, in C2SP tlog-tiles path form: 3-digit segments, all but the last "
                           "prefixed with x (1234067 is x001/x234/067), then .p/<width> for a partial tile."}


PATHS = {
    "/tlog/checkpoint": {"get": {
        "summary": "The latest checkpoint (the same note as /v1/checkpoint).",
        "operationId": "tlogCheckpoint",
        "responses": {"200": {"description": "A C2SP tlog-checkpoint signed note.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}},
                      "503": {"$ref": "#/components/responses/E503"}},
    }},
    "/tlog/tile/{level}/{index}": {"get": {
        "summary": "A hash tile: up to 256 consecutive 32-byte hashes of one tree level.",
        "description": "Full tiles never change (Cache-Control immutable); partial ones are short-lived.",
        "operationId": "tlogHashTile",
        "parameters": [{"name": "level", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,2}$"}},
                       _index("index", "The tile's index within its level")],
        "responses": {"200": {"description": "Concatenated hashes.", "content": OCTETS}, "404": NOT_FOUND},
    }},
    "/tlog/tile/entries/{index}": {"get": {
        "summary": "An entry bundle: up to 256 entries, each a 2-byte big-endian length and its leaf bytes.",
        "operationId": "tlogEntryBundle",
        "parameters": [_index("index", "The bundle's index (entry index / 256)")],
        "responses": {"200": {"description": "The entries.", "content": OCTETS}, "404": NOT_FOUND},
    }},
}
