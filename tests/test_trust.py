"""The trust registry: trust.json in and out, lookups, additions, revocations."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from datetime import datetime, timedelta, timezone

import pytest

from labelcheck.ledger.keyfile import generate_key
from labelcheck.claims.trust import Producer, TrustError, TrustRegistry

ACME = generate_key("acme-ai")
SITE = generate_key("video-site")


def trust_dict():
    return {
        "producers": [
            {"name": "Acme AI", "vkey": ACME.vkey, "filing": "F-1", "roles": ["producer"], "revoked_at": None},
            {"name": "Video Site", "vkey": SITE.vkey, "filing": None, "roles": ["propagator"], "revoked_at": None},
        ]
    }


def test_round_trip_through_a_file(tmp_path):
    path = tmp_path / "trust.json"
    reg = TrustRegistry.from_dict(trust_dict())
    reg.save(path)
    again = TrustRegistry.load(path)
    assert again.to_dict() == trust_dict()
    assert again.version == reg.version
    acme = again.lookup(ACME.key_id)
    assert acme.name == "Acme AI" and acme.filing == "F-1" and acme.key_id == ACME.key_id
    assert acme.verify(b"msg", ACME.sign(b"msg")) and not acme.verify(b"msg!", ACME.sign(b"msg"))
    assert again.lookup("nobody+00000000") is None
    assert len(again) == 2 and ACME.key_id in again
    assert [p.key_id for p in again.producers] == [ACME.key_id, SITE.key_id]


def test_minimal_entry_defaults_to_producer_role():
    reg = TrustRegistry.from_dict({"producers": [{"name": "Acme AI", "vkey": ACME.vkey}]})
    p = reg.lookup(ACME.key_id)
    assert p.roles == ("producer",) and p.filing is None and p.revoked_at is None
    assert p.public_dict()["key_id"] == ACME.key_id


def test_version_ignores_order_and_layout_but_not_content():
    forward = TrustRegistry.from_dict(trust_dict())
    d = trust_dict()
    d["producers"].reverse()
    assert TrustRegistry.from_dict(d).version == forward.version
    assert len(forward.version) == 64
    before = forward.version
    forward.revoke(SITE.key_id, datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert forward.version != before


def test_add_refuses_duplicates_and_bad_keys():
    reg = TrustRegistry.from_dict(trust_dict())
    with pytest.raises(TrustError) as err:
        reg.add({"name": "Acme again", "vkey": ACME.vkey})
    assert err.value.code == "duplicate" and isinstance(err.value, ValueError)
    with pytest.raises(TrustError) as err:
        reg.add({"name": "Broken", "vkey": ACME.vkey[:-3] + "AAA"})
    assert err.value.code == "invalid" and err.value.field == "vkey"
    with pytest.raises(TrustError) as err:
        reg.add({"name": "Private", "vkey": ACME.skey})
    assert err.value.code == "invalid"
    assert len(reg) == 2


@pytest.mark.parametrize(
    "entry, field",
    [
        ({"vkey": ACME.vkey}, "name"),
        ({"name": "", "vkey": ACME.vkey}, "name"),
        ({"name": "A"}, "vkey"),
        ({"name": "A", "vkey": 12}, "vkey"),
        ({"name": "A", "vkey": ACME.vkey, "roles": ["admin"]}, "roles"),
        ({"name": "A", "vkey": ACME.vkey, "roles": []}, "roles"),
        ({"name": "A", "vkey": ACME.vkey, "roles": "producer"}, "roles"),
        ({"name": "A", "vkey": ACME.vkey, "filing": 5}, "filing"),
        ({"name": "A", "vkey": ACME.vkey, "revoked_at": "yesterday"}, "revoked_at"),
        ({"name": "A", "vkey": ACME.vkey, "revoked": "2026-01-01T00:00:00Z"}, "revoked"),
        ({"name": "\ud800", "vkey": ACME.vkey}, "name"),
        ({"name": "a\x7fb", "vkey": ACME.vkey}, "name"),
        ({"name": "A" * 201, "vkey": ACME.vkey}, "name"),
        ({"name": "A", "vkey": ACME.vkey, "filing": "F\udfff"}, "filing"),
        ({"name": "A", "vkey": ACME.vkey, "filing": "F\n1"}, "filing"),
        ({"name": "A", "vkey": ACME.vkey, "filing": "F" * 201}, "filing"),
        ({"name": "A", "vkey": ACME.vkey, "revoked_at": "2026-01-01T00:00:00+01:00"}, "revoked_at"),
        ({"name": "A", "vkey": ACME.vkey, "revoked_at": "0000-01-01T00:00:00Z"}, "revoked_at"),
        ({"name": "A", "vkey": ACME.vkey, "revoked_at": 20260101}, "revoked_at"),
    ],
)
def test_bad_entries_name_the_field(entry, field):
    with pytest.raises(TrustError) as err:
        TrustRegistry.from_dict({"producers": [entry]})
    assert err.value.field == f"producers[0].{field}"
    assert str(err.value).startswith("producers[0]:")


def test_revoke_sets_time_and_only_moves_earlier():
    reg = TrustRegistry.from_dict(trust_dict())
    t1 = datetime(2026, 2, 1, tzinfo=timezone.utc)
    p = reg.revoke(ACME.key_id, t1)
    assert p.revoked_at == t1 and reg.lookup(ACME.key_id).revoked_at == t1
    assert reg.revoke(ACME.key_id, "2026-03-01T00:00:00Z").revoked_at == t1
    assert reg.revoke(ACME.key_id, "2026-01-01T00:00:00Z").revoked_at == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert reg.to_dict()["producers"][0]["revoked_at"] == "2026-01-01T00:00:00Z"
    now = reg.revoke(SITE.key_id)
    assert abs((datetime.now(timezone.utc) - now.revoked_at).total_seconds()) < 5
    with pytest.raises(TrustError) as err:
        reg.revoke("nobody+00000000")
    assert err.value.code == "unknown"
    with pytest.raises(TrustError):
        reg.revoke(ACME.key_id, "not a time")


def test_save_is_atomic_and_keeps_mode(tmp_path):
    path = tmp_path / "trust.json"
    TrustRegistry.from_dict(trust_dict()).save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    os.chmod(path, 0o640)
    reg = TrustRegistry.load(path)
    reg.revoke(ACME.key_id, "2026-01-01T00:00:00Z")
    reg.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert TrustRegistry.load(path).lookup(ACME.key_id).revoked_at is not None
    assert [p.name for p in tmp_path.iterdir()] == ["trust.json"]  # no temp files left


def test_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "trust.json"
    TrustRegistry.from_dict(trust_dict()).save(path)
    before = path.read_bytes()

    def boom(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        TrustRegistry().save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["trust.json"]


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(TrustError) as err:
        TrustRegistry.load(tmp_path / "none.json")
    assert err.value.code == "missing" and "does not exist" in str(err.value)
    assert len(TrustRegistry.load(tmp_path / "none.json", missing_ok=True)) == 0
    bad = tmp_path / "bad.json"
    for text, match in [
        ("{", "not valid JSON"),
        ("[]", "producers"),
        ('{"producers": [], "producers": []}', "duplicate"),
        ('{"producers": [{"name": "A", "vkey": "x"}]}', r"producers\[0\]: vkey"),
        ('{"producers": [], "extra": 1}', "unknown field"),
    ]:
        bad.write_text(text)
        with pytest.raises(TrustError, match=match) as err:
            TrustRegistry.load(bad)
        assert str(bad) in str(err.value)


def test_concurrent_adds_never_lose_or_duplicate():
    reg = TrustRegistry()
    signers = [generate_key(f"k{i}") for i in range(40)]
    errors = []

    def add(s):
        for _ in range(2):  # each key offered twice: one wins, one is refused
            try:
                reg.add(Producer(s.name, s.vkey))
            except TrustError as exc:
                errors.append(exc.code)

    threads = [threading.Thread(target=add, args=(s,)) for s in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reg) == 40 and errors == ["duplicate"] * 40


def test_file_written_by_save_is_plain_trust_json(tmp_path):
    path = tmp_path / "trust.json"
    TrustRegistry.from_dict(trust_dict()).save(path)
    data = json.loads(path.read_text())
    assert set(data) == {"producers"}
    assert set(data["producers"][0]) == {"name", "vkey", "filing", "roles", "revoked_at"}


@pytest.mark.parametrize("year", [1, 9, 99, 999, 1000, 9999])
def test_revocations_in_any_year_survive_a_save_and_load(tmp_path, year):
    path = tmp_path / "trust.json"
    reg = TrustRegistry.from_dict(trust_dict())
    when = datetime(year, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    reg.revoke(ACME.key_id, when)
    reg.save(path)
    text = f"{year:04d}-01-02T03:04:05Z"
    assert json.loads(path.read_text())["producers"][0]["revoked_at"] == text
    again = TrustRegistry.load(path)
    assert again.lookup(ACME.key_id).revoked_at == when
    assert again.version == reg.version


def test_revocation_datetimes_are_utc_whole_seconds():
    east = timezone(timedelta(hours=1))
    p = Producer(name="A", vkey=ACME.vkey, revoked_at=datetime(2026, 1, 1, 1, 0, 0, 999, tzinfo=east))
    assert p.revoked_at == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert Producer(name="A", vkey=ACME.vkey, revoked_at=datetime(2026, 1, 1)).revoked_at.tzinfo == timezone.utc
    with pytest.raises(TrustError, match="revoked_at"):  # before year 1 once in UTC
        Producer(name="A", vkey=ACME.vkey, revoked_at=datetime(1, 1, 1, tzinfo=east))
    with pytest.raises(TrustError, match="revoked_at"):
        TrustRegistry.from_dict(trust_dict()).revoke(ACME.key_id, "2026-01-01T00:00:00+02:00")


def test_names_and_filings_in_any_script_are_kept(tmp_path):
    path = tmp_path / "trust.json"
    reg = TrustRegistry([Producer(name="生成AI \U0001F600", vkey=ACME.vkey, filing="网信算备-1")])
    reg.save(path)
    p = TrustRegistry.load(path).lookup(ACME.key_id)
    assert (p.name, p.filing) == ("生成AI \U0001F600", "网信算备-1")


def test_parse_and_to_json_are_the_file_without_the_file(tmp_path):
    reg = TrustRegistry.from_dict(trust_dict())
    path = tmp_path / "trust.json"
    reg.save(path)
    assert path.read_text(encoding="utf-8") == reg.to_json()
    again = TrustRegistry.parse(reg.to_json().encode("utf-8"), "the database")
    assert again.to_dict() == reg.to_dict() and again.version == reg.version
    assert hashlib.sha256(reg.canonical_json()).hexdigest() == reg.version
    with pytest.raises(TrustError, match=r"^the database: producers\[0\]: vkey") as err:
        TrustRegistry.parse(b'{"producers": [{"name": "A", "vkey": "x"}]}', "the database")
    assert err.value.field == "producers[0].vkey"
