"""The log as C2SP tlog-tiles under ``/tlog/`` (docs/protocol.md §10).

``/tlog/checkpoint`` is the note ``GET /v1/checkpoint`` serves, cacheable for
a few seconds (C2SP tlog-tiles, "Checkpoints").  ``/tlog/tile/<L>/<N>[.p/<W>]``
and ``/tlog/tile/entries/<N>[.p/<W>]`` are the hash tiles and entry bundles of
``labelcheck.ledger.tiles``, the same bytes ``labelcheck ledger publish-tiles``
writes.  A tile exists once the latest signed checkpoint covers it; a full
tile never changes, so it is cached for a year; a partial one for a minute.
Anything else under ``/tlog/tile/`` is a 404 problem.
"""

from __future__ import annotations

import threading

from flask import Blueprint, Flask, Response, current_app

from labelcheck.ledger.backend import DB_ERRORS, LedgerStore, open_store
from labelcheck.ledger.store import StoreError
from labelcheck.ledger.tiles import TileError, TileMissing, parse_path, read_tile
from labelcheck.web import api
from labelcheck.web.problems import Problem

bp = Blueprint("tlog", __name__, url_prefix="/tlog")

OCTETS = "application/octet-stream"
CHECKPOINT_CACHE = "public, max-age=5"
FULL_CACHE = "public, max-age=31536000, immutable"
PARTIAL_CACHE = "public, max-age=60"
_KEY = "labelcheck.tiles"


@bp.get("/checkpoint")
def checkpoint() -> Response:
    """The checkpoint of ``GET /v1/checkpoint``, same bytes, short-lived."""
    response = api.checkpoint()
    if response.status_code == 200:
        response.headers["Cache-Control"] = CHECKPOINT_CACHE
    return response


@bp.get("/tile/<path:rest>", merge_slashes=False)
def tile(rest: str) -> Response:
    """One hash tile or entry bundle (C2SP tlog-tiles "Merkle Tree", "Log entries")."""
    try:
        wanted = parse_path("tile/" + rest)
    except TileError as exc:
        raise Problem(404, f"no such tile: {exc}") from None
    api.services().ledger  # the ledger's start-up check runs before anything is read
    try:
        store = _store(current_app)
        latest = store.latest_checkpoint()
        data = read_tile(wanted, latest[0] if latest else 0, store)
    except TileMissing as exc:
        raise Problem(404, str(exc)) from None
    except TileError as exc:  # an entry too long for a bundle: the log cannot serve it this way
        raise Problem(404, str(exc)) from None
    except (StoreError, *DB_ERRORS) as exc:
        raise Problem(503, f"the ledger could not be read: {exc}", headers={"Retry-After": "5"}) from None
    response = Response(data, mimetype=OCTETS)
    response.headers["Cache-Control"] = FULL_CACHE if wanted.full else PARTIAL_CACHE
    return response


def _store(app: Flask) -> LedgerStore:
    """This app's read handle on the ledger database, opened on first use
    (``Store`` itself reopens its connections after a fork)."""
    holder = app.extensions.setdefault(_KEY, {"lock": threading.Lock(), "store": None})
    with holder["lock"]:
        if holder["store"] is None:
            holder["store"] = open_store(api.services().config.ledger_location, create=False)
        return holder["store"]


def close(app: Flask) -> None:
    """Close the read handle (when the app's services are closed)."""
    holder = app.extensions.get(_KEY)
    if holder and holder["store"] is not None:
        holder["store"].close()
        holder["store"] = None
