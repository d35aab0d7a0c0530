"""Hostile bodies on the admin routes (POST /v1/producers, POST
/v1/producers/<keyid>/revoke) through the real Flask app: every one is
answered with a 4xx problem+json or accepted and stored correctly, never a
500, and the registry stays readable afterwards."""

from __future__ import annotations

import hashlib
import json

import pytest

from labelcheck import claims
from labelcheck.ledger import keyfile as keys

MEDIA_SHA = hashlib.sha256(b"admin input media").hexdigest()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def admin(app) -> dict:
    return {"Authorization": "Bearer " + app.extensions["labelcheck"].admin_token}


def post_raw(client, url: str, text: str, headers: dict):
    """POST ``text`` as it is: json= would refuse to write a lone surrogate escape."""
    return client.post(url, data=text.encode("utf-8"), headers={**headers, "Content-Type": "application/json"})


def assert_4xx_problem(r) -> dict:
    assert 400 <= r.status_code < 500, (r.status_code, r.data[:300])
    assert r.mimetype == "application/problem+json"
    body = r.json
    assert body["status"] == r.status_code and body["title"] and body["detail"]
    return body


def assert_registry_readable(client, app) -> list:
    """GET /v1/keys still answers and trust.json still loads."""
    r = client.get("/v1/keys")
    assert r.status_code == 200, r.data[:300]
    return r.json["producers"]


def vkey(name: str = "hostile") -> str:
    return keys.generate_key(name).vkey


# --- POST /v1/producers ----------------------------------------------------------


@pytest.mark.parametrize("name_json, field", [
    (r'"\ud800"', "name"),                 # a lone high surrogate
    (r'"ok\udc00ok"', "name"),             # a lone low surrogate inside text
    (r'"\udc00\ud800"', "name"),           # a pair in the wrong order
])
def test_lone_surrogate_in_name_is_422(client, admin, app, name_json, field):
    r = post_raw(client, "/v1/producers", f'{{"name": {name_json}, "vkey": "{vkey()}"}}', admin)
    assert r.status_code == 422
    assert field in assert_4xx_problem(r)["detail"]
    assert assert_registry_readable(client, app) == []


@pytest.mark.parametrize("body", [
    r'{"name": "x", "vkey": "%s", "filing": "\ud800"}',
    r'{"name": "x", "vkey": "%s", "roles": ["\ud800"]}',
    r'{"name": "x", "vkey": "%s", "revoked_at": "\ud800"}',
    r'{"name": "x", "vkey": "%s\ud800"}',
    r'{"\ud800": "x", "name": "x", "vkey": "%s"}',
])
def test_lone_surrogates_elsewhere_are_4xx(client, admin, app, body):
    assert_4xx_problem(post_raw(client, "/v1/producers", body % vkey(), admin))
    assert assert_registry_readable(client, app) == []


def test_a_proper_surrogate_pair_is_unicode_and_accepted(client, admin, app):
    r = post_raw(client, "/v1/producers", r'{"name": "Acme \ud83d\ude00", "vkey": "%s"}' % vkey(), admin)
    assert r.status_code == 201, r.data
    assert r.json["producer"]["name"] == "Acme \U0001F600"
    assert [p["name"] for p in assert_registry_readable(client, app)] == ["Acme \U0001F600"]


@pytest.mark.parametrize("field, value", [
    ("name", "x" * 201), ("name", "x" * 100_000), ("name", ""), ("name", "   "),
    ("name", 5), ("name", None), ("name", ["x"]), ("name", {"x": 1}), ("name", True),
    ("name", "a\nb"), ("name", "a\x00b"), ("name", "tab\there"), ("name", "del\x7f"),
    ("filing", "F" * 201), ("filing", 7), ("filing", ["F-1"]), ("filing", "F\r\n1"),
    ("vkey", 5), ("vkey", None), ("vkey", ["x"]), ("vkey", "x" * 100_000), ("vkey", "PRIVATE+KEY+a+00000000+AA=="),
    ("roles", "producer"), ("roles", []), ("roles", [5]), ("roles", [[]]), ("roles", [{}]),
    ("roles", ["producer", "producer"]), ("roles", ["admin"]), ("roles", {"producer": True}),
    ("revoked_at", 5), ("revoked_at", ""), ("revoked_at", "yesterday"), ("revoked_at", ["2025-01-01T00:00:00Z"]),
    ("revoked_at", "2025-13-01T00:00:00Z"), ("revoked_at", "2025-02-30T00:00:00Z"),
    ("revoked_at", "0000-01-01T00:00:00Z"), ("revoked_at", "2025-01-01T00:00:00+05:00"),
    ("revoked_at", "0001-01-01T00:00:00+01:00"), ("revoked_at", "9999-12-31T23:59:59-01:00"),
    ("revoked_at", "2025-01-01 00:00:00Z"), ("revoked_at", "２０２５-01-01T00:00:00Z"),
    ("revoked", True), ("key_id", "someone+00000000"),
])
def test_bad_producer_fields_are_4xx(client, admin, app, field, value):
    body = {"name": "Hostile", "vkey": vkey(), field: value}
    r = client.post("/v1/producers", json=body, headers=admin)
    assert_4xx_problem(r)
    assert assert_registry_readable(client, app) == []


@pytest.mark.parametrize("raw", [
    "[]", '"producer"', "5", "null", "{", '{"name": "x", "vkey": NaN}', '{"a": 1e999}',
    "[" * 10_000 + "]" * 10_000,
])
def test_bodies_that_are_not_a_producer_object_are_4xx(client, admin, app, raw):
    assert_4xx_problem(post_raw(client, "/v1/producers", raw, admin))
    assert assert_registry_readable(client, app) == []


def test_invalid_utf8_and_wrong_media_type_are_4xx(client, admin):
    r = client.post("/v1/producers", data=b'{"name": "\xff\xfe", "vkey": "x"}',
                    headers={**admin, "Content-Type": "application/json"})
    assert_4xx_problem(r)
    r = client.post("/v1/producers", data=b"name=x", headers={**admin, "Content-Type": "text/plain"})
    assert_4xx_problem(r)


@pytest.mark.parametrize("when, written", [
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
    ("0999-12-31T23:59:59Z", "0999-12-31T23:59:59Z"),
    ("0099-06-01T12:00:00.5z", "0099-06-01T12:00:00Z"),
    ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
    ("0500-01-01T00:00:00-00:00", "0500-01-01T00:00:00Z"),
    ("2025-01-01t00:00:00+00:00", "2025-01-01T00:00:00Z"),
])
def test_any_four_digit_year_is_stored_zero_padded(client, admin, app, tmp_path, when, written):
    r = client.post("/v1/producers", json={"name": "Old", "vkey": vkey(), "revoked_at": when}, headers=admin)
    assert r.status_code == 201, r.data
    assert r.json["producer"]["revoked_at"] == written
    trust = json.loads((tmp_path / "data/trust.json").read_text())
    assert [p["revoked_at"] for p in trust["producers"]] == [written]
    # The registry reads back: another change and the key list both work.
    assert client.post("/v1/producers", json={"name": "Next", "vkey": vkey("next")}, headers=admin).status_code == 201
    assert [p["revoked_at"] for p in assert_registry_readable(client, app)] == [written, None]


# --- POST /v1/producers/<keyid>/revoke ----------------------------------------------


@pytest.fixture
def registered(client, admin):
    signer = keys.generate_key("to-revoke")
    r = client.post("/v1/producers", json={"name": "To Revoke", "vkey": signer.vkey}, headers=admin)
    assert r.status_code == 201
    return signer


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "0999-01-01T00:00:00Z", "0010-10-10T10:10:10Z"])
def test_revoking_in_early_years_is_stored_and_refuses_claims(client, admin, app, registered, when):
    r = client.post(f"/v1/producers/{registered.key_id}/revoke", json={"revoked_at": when}, headers=admin)
    assert r.status_code == 200, r.data
    assert r.json["producer"]["revoked_at"] == when
    [entry] = assert_registry_readable(client, app)
    assert entry["revoked_at"] == when
    env = claims.sign_envelope(claims.build_payload(MEDIA_SHA, "image/png", "1", issuer=registered), registered)
    r = client.post("/v1/verify", json={"items": [{"claim": env, "content_sha256": MEDIA_SHA}]})
    assert r.status_code == 200
    [result] = r.json["results"]
    assert result["status"] == "invalid" and "revoked_key" in result["reasons"]
    # Moving it later is a conflict, and the answer is still a problem, not a 500.
    later = client.post(f"/v1/producers/{registered.key_id}/revoke", json={"revoked_at": "2020-01-01T00:00:00Z"},
                        headers=admin)
    assert assert_4xx_problem(later)["status"] == 409


def test_revoking_in_year_9999_is_stored(client, admin, app, registered):
    r = client.post(f"/v1/producers/{registered.key_id}/revoke", json={"revoked_at": "9999-12-31T23:59:59Z"},
                    headers=admin)
    assert r.status_code == 200 and r.json["producer"]["revoked_at"] == "9999-12-31T23:59:59Z"
    assert assert_registry_readable(client, app)[0]["revoked_at"] == "9999-12-31T23:59:59Z"


@pytest.mark.parametrize("raw", [
    r'{"revoked_at": "\ud800"}', r'{"revoked_at": 5}', r'{"revoked_at": ["x"]}', r'{"revoked_at": {}}',
    r'{"revoked_at": "0000-01-01T00:00:00Z"}', r'{"revoked_at": "2025-01-01T00:00:00+05:30"}',
    r'{"revoked_at": "0001-01-01T00:00:00+00:01"}', r'{"revoked_at": "2025-01-01"}',
    r'{"revoked_at": "%s"}' % ("9" * 100_000), r'{"revoked_at": "2025-01-01T00:00:00Z", "why": 1}',
    r'{"\ud800": 1}', "[]", '"now"', "5", "{",
])
def test_bad_revoke_bodies_are_4xx(client, admin, app, registered, raw):
    assert_4xx_problem(post_raw(client, f"/v1/producers/{registered.key_id}/revoke", raw, admin))
    assert assert_registry_readable(client, app)[0]["revoked_at"] is None


@pytest.mark.parametrize("key_id", ["%ED%A0%80", "x" * 5000, "%00", "a%2F..%2F..", "nobody+00000000", "%FF%FE"])
def test_odd_key_ids_in_the_path_are_4xx(client, admin, app, registered, key_id):
    r = client.post(f"/v1/producers/{key_id}/revoke", json={}, headers=admin)
    assert_4xx_problem(r)
    assert assert_registry_readable(client, app)[0]["revoked_at"] is None
