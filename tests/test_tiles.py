"""C2SP tlog-tiles: tile paths, tiles and entry bundles of a real ledger,
proofs recomputed from tiles alone, /tlog/ over HTTP, and publish-tiles."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelcheck.cli import main
from labelcheck.ledger import Ledger, merkle
from labelcheck.ledger.checkpoint import Checkpoint, open_checkpoint
from labelcheck.ledger.note import Verifier
from labelcheck.ledger.store import Store
from labelcheck.ledger.tiles import (
    ENTRIES, Tile, TileError, TileHashes, TileMissing, decode_bundle, encode_bundle, encode_index, parse_path,
    read_tile, tiles_for_size,
)
from labelcheck.ledger.tiles_publish import latest_signed, publish
from labelcheck.web import tiles as web_tiles
from labelcheck.web.app import create_app

ORIGIN = "test.example/log"
SIZES = (0, 1, 255, 256, 257, 511, 512, 513)


def records(start: int, end: int) -> list[dict]:
    return [{"kind": "verification", "n": i, "pad": "é" * (i % 7)} for i in range(start, end)]


def grow(led: Ledger, size: int) -> bytes:
    """Append up to ``size`` entries and sign a checkpoint of them."""
    have = led.size()
    for at in range(have, size, 5000):
        led.append(records(at, min(size, at + 5000)))
    return led.checkpoint()


@pytest.fixture(scope="module")
def led513(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("l513")
    ledger = Ledger.open_dir(data_dir, origin=ORIGIN)
    grow(ledger, 513)
    store = Store(data_dir / "ledger.db", create=False)
    yield ledger, store
    store.close()
    ledger.close()


# --- paths -------------------------------------------------------------------


@pytest.mark.parametrize("tile, path", [
    (Tile(0, 1234067), "tile/0/x001/x234/067"),
    (Tile(0, 0), "tile/0/000"),
    (Tile(3, 999, 1), "tile/3/999.p/1"),
    (Tile(63, 1000, 255), "tile/63/x001/000.p/255"),
    (Tile(ENTRIES, 5), "tile/entries/005"),
    (Tile(ENTRIES, 10**6, 17), "tile/entries/x001/x000/000.p/17"),
])
def test_paths_as_the_spec_writes_them(tile, path):
    assert tile.path == path
    assert parse_path(path) == tile


@pytest.mark.parametrize("path", [
    "tile/0/x000/001", "tile/0/0001", "tile/0/01", "tile/00/000", "tile/64/000", "tile/-1/000", "tile/data/000",
    "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/05", "tile/0/000.p/", "tile/0/000.p", "tile/0/x001",
    "tile/0/001/002", "tile/0/x001/x002", "tile/0/", "tile//000", "tile/0/000/", "/tile/0/000", "tile/0/+01",
    "tile/0/\u0661\u0662\u0663", "tile/entries", "tile/entries/000.p/1/000", "Tile/0/000", "tile/0/ 001",
    "tile/0/" + "x001/" * 7 + "000", "tile/1e1/000", "tile/0/000.P/1", "tile/0/000.p/1.p/1",
])
def test_non_canonical_paths_are_refused(path):
    with pytest.raises(TileError):
        parse_path(path)


tiles_st = st.builds(Tile, st.integers(ENTRIES, 63), st.integers(0, 10**18 - 1), st.integers(1, 256))


@given(tiles_st)
def test_paths_round_trip(tile):
    assert parse_path(tile.path) == tile
    assert all(len(seg.lstrip("x")) == 3 for seg in encode_index(tile.n).split("/"))


@given(tiles_st, st.data())
def test_bit_flips_truncation_and_extra_segments_never_give_another_spelling(tile, data):
    path = tile.path
    raw = bytearray(path.encode())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= 1 << data.draw(st.integers(0, 7))
    cut = path[:data.draw(st.integers(0, len(path) - 1))]
    extra = path + "/" + data.draw(st.sampled_from(["000", "x000", "1", "", ".p", "001.p"]))
    for candidate in (raw.decode("latin-1"), cut):
        try:
            parsed = parse_path(candidate)
        except TileError:
            continue
        assert parsed.path == candidate  # only ever another canonical tile
    with pytest.raises(TileError):
        parse_path(extra)


# --- tiles of a real ledger --------------------------------------------------


def test_spec_example_of_a_tree_of_70000():
    paths = {t.path for t in tiles_for_size(70000) if t.level > 0 or not t.full}
    assert paths == {"tile/0/273.p/112", "tile/1/000", "tile/1/001.p/17", "tile/2/000.p/1", "tile/entries/273.p/112"}
    assert {t.path for t in tiles_for_size(256) if t.level >= 1} == {"tile/1/000.p/1"}
    assert tiles_for_size(0) == []


@pytest.mark.parametrize("size", SIZES)
def test_every_proof_from_tiles_alone_equals_the_ledgers(led513, size):
    led, store = led513
    fetched = []

    def fetch(tile: Tile) -> bytes:
        fetched.append(tile)
        return read_tile(tile, size, store)

    hashes = TileHashes(size, fetch)
    root = merkle.tree_hash(size, hashes)
    assert root == merkle.tree_hash(size, store.read_hashes)
    for i in range(size):
        assert merkle.prove_inclusion(i, size, hashes) == led.inclusion_proof(i, size)
    for old in range(1, size + 1):
        assert merkle.prove_consistency(old, size, hashes) == led.consistency_proof(old, size)
    assert set(fetched) <= {t for t in tiles_for_size(size) if t.level >= 0}
    entries = [e for t in tiles_for_size(size) if t.level == ENTRIES
               for e in decode_bundle(read_tile(t, size, store), t.width)]
    assert entries == (led.entries(0, size) if size else [])


def test_a_lying_tile_is_caught_by_the_signed_root(led513):
    led, store = led513
    size = 513

    def fetch(tile: Tile) -> bytes:
        data = read_tile(tile, size, store)
        return data[:40] + bytes([data[40] ^ 1]) + data[41:] if tile == Tile(0, 1) else data

    hashes = TileHashes(size, fetch)
    root = merkle.tree_hash(size, store.read_hashes)
    proof = merkle.prove_inclusion(300, size, hashes)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(300, size, led.leaf_hash(300), proof, root)
    with pytest.raises(TileError, match="bytes"):
        TileHashes(size, lambda t: b"\0" * 31).hash(0)


def test_tiles_beyond_the_log_are_missing(led513):
    _, store = led513
    for tile in (Tile(0, 2, 2), Tile(0, 2), Tile(1, 0, 3), Tile(2, 0, 1), Tile(ENTRIES, 2, 2), Tile(0, 10**17)):
        with pytest.raises(TileMissing):
            read_tile(tile, 513, store)
    assert len(read_tile(Tile(0, 2, 1), 513, store)) == 32
    assert len(read_tile(Tile(1, 0, 2), 513, store)) == 64


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_bundles_round_trip_and_refuse_damage(entries):
    data = encode_bundle(entries)
    assert decode_bundle(data, len(entries)) == entries
    if data:
        with pytest.raises(TileError):
            decode_bundle(data[:-1], len(entries))
    with pytest.raises(TileError):
        decode_bundle(data + b"\x00", len(entries))
    with pytest.raises(TileError):
        decode_bundle(data, len(entries) + 1)


def test_an_entry_too_long_for_a_bundle_is_refused():
    assert decode_bundle(encode_bundle([b"x" * 0xFFFF])) == [b"x" * 0xFFFF]
    with pytest.raises(TileError, match="entry 7 is 65536 bytes"):
        encode_bundle([b"x" * 0x10000], first=7)


def test_a_log_of_65537_from_published_tiles(tmp_path):
    with Ledger.open_dir(tmp_path / "data", origin=ORIGIN) as led:
        grow(led, 65537)
        store = Store(tmp_path / "data" / "ledger.db", create=False)
        try:
            size, note_data = latest_signed(store)
            publish(store, note_data, size, tmp_path / "out")
        finally:
            store.close()
        hashes = TileHashes(size, lambda t: (tmp_path / "out" / t.path).read_bytes())
        assert (tmp_path / "out/tile/2/000.p/1").stat().st_size == 32
        for i in (0, 255, 256, 65279, 65535, 65536):
            assert merkle.prove_inclusion(i, size, hashes) == led.inclusion_proof(i, size)
        for old in (1, 256, 257, 65535, 65536, 65537):
            assert merkle.prove_consistency(old, size, hashes) == led.consistency_proof(old, size)
        last = Tile(ENTRIES, 256, 1)
        assert decode_bundle((tmp_path / "out" / last.path).read_bytes(), 1) == led.entries(65536, 65537)


# --- /tlog/ over HTTP and publish-tiles --------------------------------------


@pytest.fixture
def app(tmp_path):
    application = create_app({"data_dir": tmp_path / "data", "verify_rate": 0, "origin": ORIGIN})
    yield application
    web_tiles.close(application)
    application.extensions["labelcheck"].services.close()


def served_ledger(app) -> Ledger:
    return app.extensions["labelcheck"].services.ledger


def test_checkpoint_is_the_v1_one_with_a_short_cache(app):
    client = app.test_client()
    grow(served_ledger(app), 300)
    r = client.get("/tlog/checkpoint")
    assert r.status_code == 200
    assert r.data == client.get("/v1/checkpoint").data
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["Cache-Control"] == "public, max-age=5"
    cp = open_checkpoint(r.data, Verifier.from_vkey(served_ledger(app).verifier_key), origin=ORIGIN)
    assert cp.size == 300


def test_tiles_over_http_with_their_caching(app):
    client, led = app.test_client(), served_ledger(app)
    grow(led, 300)
    store = Store(led_db(app), create=False)
    try:
        for path, cache in (("tile/0/000", "public, max-age=31536000, immutable"),
                            ("tile/0/001.p/44", "public, max-age=60"), ("tile/0/001.p/3", "public, max-age=60"),
                            ("tile/1/000.p/1", "public, max-age=60"),
                            ("tile/entries/000", "public, max-age=31536000, immutable"),
                            ("tile/entries/001.p/44", "public, max-age=60")):
            r = client.get("/tlog/" + path)
            assert r.status_code == 200, (path, r.data[:200])
            assert r.headers["Content-Type"] == "application/octet-stream"
            assert r.headers["Cache-Control"] == cache
            assert r.data == read_tile(parse_path(path), 300, store)
        assert decode_bundle(client.get("/tlog/tile/entries/001.p/44").data, 44) == led.entries(256, 300)
        assert client.head("/tlog/tile/0/000").status_code == 200
    finally:
        store.close()
    for path in ("tile/0/001.p/45", "tile/0/001", "tile/1/000", "tile/2/000.p/1", "tile/entries/001",
                 "tile/entries/002.p/1", "tile/0/x001/000"):
        assert_problem(client.get("/tlog/" + path), 404)


def led_db(app):
    return app.extensions["labelcheck"].services.config.ledger_db


def assert_problem(r, status):
    assert r.status_code == status, r.data[:300]
    assert r.headers["Content-Type"] == "application/problem+json"
    body = json.loads(r.data)
    assert body["status"] == status and body["detail"]


NASTY = ["tile/0/000.p/0", "tile/0/../../../etc/passwd", "tile/%2e%2e/000", "tile/0/000%00", "tile/0/" + "9" * 5000,
         "tile/0/" + "x999/" * 50 + "999", "tile/63/x999/x999/x999/x999/x999/999", "tile/entries/",
         "tile/0/000.p/255/", "tile/0/\u00e9", "tile/0/000.p/4?x=1", "tile/0/000;x", "tile//", "tile/0//000"]


@pytest.mark.parametrize("path", NASTY)
def test_malformed_tile_paths_are_404_problems(app, path):
    grow(served_ledger(app), 3)
    assert_problem(app.test_client().get("/tlog/" + path), 404)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.text(st.sampled_from("0123456789x./pentries%-+ \u00e9"), max_size=40))
def test_fuzzed_tile_paths_never_fail_the_server(app, tail):
    r = app.test_client().get("/tlog/tile/" + tail)
    assert r.status_code in (200, 404), (tail, r.status_code, r.data[:200])
    if r.status_code == 404:
        assert r.headers["Content-Type"] == "application/problem+json"
    else:
        assert r.headers["Content-Type"] == "application/octet-stream"


def published_files(out) -> dict[str, tuple[int, int]]:
    return {p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in out.rglob("*") if p.is_file()}


def test_publish_equals_what_the_server_serves_and_runs_incrementally(app, tmp_path):
    client, led = app.test_client(), served_ledger(app)
    out = tmp_path / "out"
    runner = CliRunner()
    grow(led, 300)
    r = runner.invoke(main, ["ledger", "publish-tiles", "--db", str(led_db(app)), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "300 entries: 5 tiles written, 0 already present, checkpoint updated" in r.output
    first = published_files(out)
    assert set(first) == {"checkpoint"} | {t.path for t in tiles_for_size(300)}
    grow(led, 600)
    r = runner.invoke(main, ["ledger", "publish-tiles", "--db", str(led_db(app)), "--out", str(out)])
    assert r.exit_code == 0, r.output
    second = published_files(out)
    new = {t.path for t in tiles_for_size(600)} - set(first)
    assert f"{len(new)} tiles written, {len(tiles_for_size(600)) - len(new)} already present" in r.output
    assert set(second) == set(first) | new  # old partial tiles stay
    for path, stamp in first.items():
        assert (second[path] == stamp) == (path != "checkpoint"), path  # nothing rewritten but the checkpoint
    for path in second:
        served = client.get("/tlog/" + path)
        assert served.status_code == 200, path
        assert served.data == (out / path).read_bytes(), path
    again = runner.invoke(main, ["ledger", "publish-tiles", "--db", str(led_db(app)), "--out", str(out)])
    assert "0 tiles written" in again.output and "checkpoint unchanged" in again.output
    assert published_files(out) == second


def test_publish_refuses_another_log_a_rollback_and_no_checkpoint(tmp_path):
    runner = CliRunner()
    with Ledger.open_dir(tmp_path / "a", origin=ORIGIN) as led:
        pass
    r = runner.invoke(main, ["ledger", "publish-tiles", "--db", str(tmp_path / "a/ledger.db"), "--out",
                             str(tmp_path / "out")])
    assert r.exit_code == 2 and "no signed checkpoint" in r.output
    with Ledger.open_dir(tmp_path / "a", origin=ORIGIN) as led:
        grow(led, 10)
    with Ledger.open_dir(tmp_path / "b", origin="other.example/log") as led:
        grow(led, 10)
    with Ledger.open_dir(tmp_path / "c", origin=ORIGIN) as led:
        grow(led, 5)
    args = ["ledger", "publish-tiles", "--out", str(tmp_path / "out"), "--db"]
    assert runner.invoke(main, args + [str(tmp_path / "a/ledger.db")]).exit_code == 0
    r = runner.invoke(main, args + [str(tmp_path / "b/ledger.db")])
    assert r.exit_code == 2 and "holds another log" in r.output
    r = runner.invoke(main, args + [str(tmp_path / "c/ledger.db")])
    assert r.exit_code == 2 and "refusing to roll it back" in r.output
    assert Checkpoint.parse((tmp_path / "out/checkpoint").read_text().split("\n\n")[0] + "\n").size == 10
    r = runner.invoke(main, args + [str(tmp_path / "missing.db")])
    assert r.exit_code == 2 and "no ledger database" in r.output


def test_publish_shows_progress_on_long_work(tmp_path, monkeypatch):
    seen = []
    with Ledger.open_dir(tmp_path / "d", origin=ORIGIN) as led:
        grow(led, 256 * 70)
        store = Store(tmp_path / "d/ledger.db", create=False)
        try:
            size, note_data = latest_signed(store)
            report = publish(store, note_data, size, tmp_path / "out", progress=lambda d, t: seen.append((d, t)))
        finally:
            store.close()
    assert report.written == len(tiles_for_size(256 * 70)) == 141
    assert seen[-1] == (141, 141) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert os.stat(tmp_path / "out/tile/0/000").st_mode & 0o777 == 0o644


def test_an_entry_too_long_to_frame_is_a_404_not_a_failure(app):
    led = served_ledger(app)
    led.append([{"kind": "verification", "text": "y" * 70_000}])
    led.checkpoint()
    client = app.test_client()
    assert_problem(client.get("/tlog/tile/entries/000.p/1"), 404)
    assert client.get("/tlog/tile/0/000.p/1").data == led.leaf_hash(0)
