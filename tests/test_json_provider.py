"""Responses written by orjson (labelcheck.web.json_provider): the same JSON
values as Flask's own encoder, in the app's key order, and Flask's encoder
for whatever orjson does not take."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import uuid

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from labelcheck.web.json_provider import FastJSONProvider


@pytest.fixture
def apps():
    fast, plain = Flask("fast"), Flask("plain")
    fast.json = FastJSONProvider(fast)
    plain.json = DefaultJSONProvider(plain)
    plain.json.sort_keys = False
    return fast, plain


def answer(app, value):
    with app.app_context():
        resp = app.json.response(value)
    return resp.mimetype, resp.get_data()


@dataclasses.dataclass
class Point:
    x: int
    y: str


VALUES = {
    "plain": {"results": [{"status": "verified", "index": 7, "ok": True, "none": None, "list": ["a", "b"]}]},
    "non-ascii": {"producer": {"name": "生成 — Ünïcode 🙂"}, "checkpoint": "o\n5\n\u2014 o sig\n"},
    "escapes": {"text": "quote \" backslash \\ tab \t nul \x00 del \x7f"},
    "key order": {"z": 1, "a": 2, "m": {"y": 1, "b": 2}},
    "big integer": {"n": 2**70, "m": -(2**65)},
    "lone surrogate": {"claim_id": "x\ud800y"},
    "date": {"when": datetime.datetime(2026, 11, 27, 13, 0, tzinfo=datetime.timezone.utc),
             "day": datetime.date(2026, 11, 27)},
    "dataclass": {"p": Point(1, "ü")},
    "decimal and uuid": {"d": decimal.Decimal("1.50"), "u": uuid.UUID(int=5)},
    "top-level list": [1, "two", None],
}


@pytest.mark.parametrize("name", list(VALUES))
def test_same_json_value_as_flask(apps, name):
    fast, plain = apps
    kind, body = answer(fast, VALUES[name])
    want_kind, want = answer(plain, VALUES[name])
    assert kind == want_kind == "application/json"
    assert body.endswith(b"\n")
    assert json.loads(body) == json.loads(want)
    # The same key order, all the way down.
    assert list(json.loads(body, object_pairs_hook=lambda p: [k for k, _ in p])) == \
        list(json.loads(want, object_pairs_hook=lambda p: [k for k, _ in p]))


def test_non_ascii_is_utf8_not_escaped(apps):
    fast, _ = apps
    _, body = answer(fast, VALUES["non-ascii"])
    assert "生成".encode() in body and b"\\u" not in body


def test_what_orjson_refuses_is_written_by_flask(apps):
    fast, plain = apps
    for name in ("big integer", "lone surrogate"):
        assert answer(fast, VALUES[name]) == answer(plain, VALUES[name])


def test_a_float_that_is_not_finite_is_null_not_nan(apps):
    fast, _ = apps
    _, body = answer(fast, {"x": float("nan"), "y": float("inf"), "z": 0.5})
    assert json.loads(body) == {"x": None, "y": None, "z": 0.5}


def test_a_type_nobody_knows_fails_as_flask_fails(apps):
    fast, plain = apps
    for app in (fast, plain):
        with app.app_context(), pytest.raises(TypeError):
            app.json.response({"x": object()})


def test_indented_or_sorted_output_stays_flasks(apps):
    fast, plain = apps
    fast.debug = plain.debug = True  # indented
    assert answer(fast, VALUES["key order"]) == answer(plain, VALUES["key order"])
    fast.debug = plain.debug = False
    fast.json.compact = plain.json.compact = False  # indented
    assert answer(fast, VALUES["key order"]) == answer(plain, VALUES["key order"])
    fast.json.compact = plain.json.compact = None
    fast.json.sort_keys = plain.json.sort_keys = True
    assert answer(fast, VALUES["key order"]) == answer(plain, VALUES["key order"])


def test_the_app_answers_through_it(tmp_path):
    from labelcheck.web.app import create_app

    app = create_app({"data_dir": tmp_path / "data", "verify_rate": 0})
    try:
        assert isinstance(app.json, FastJSONProvider)
        resp = app.test_client().get("/healthz")
        assert resp.status_code == 200 and resp.get_data() == b'{"status":"ok"}\n'
    finally:
        app.extensions["labelcheck"].services.close()
