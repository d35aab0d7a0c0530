"""POST /v1/verify is rate limited per client address, in memory only."""

from __future__ import annotations

import logging
import types

import pytest

from labelcheck.pipeline.config import Config, ConfigError
from labelcheck.web.app import create_app
from labelcheck.web.ratelimit import ClientRateLimiter, client_key


def make_client(tmp_path, **cfg):
    app = create_app({"data_dir": tmp_path / "data", **cfg})
    return app.test_client()


def post(client, peer, headers=None):
    return client.post("/v1/verify", json={"items": []}, headers=headers or {},
                       environ_overrides={"REMOTE_ADDR": peer})


def test_each_address_has_its_own_bucket(tmp_path):
    c = make_client(tmp_path, verify_rate=0.01, verify_burst=2)
    assert [post(c, "198.51.100.1").status_code for _ in range(2)] == [200, 200]
    r = post(c, "198.51.100.1")
    assert r.status_code == 429 and r.content_type == "application/problem+json"
    assert int(r.headers["Retry-After"]) >= 1 and "retry" in r.get_json()["detail"]
    # Another client is not held up by the first one.
    assert [post(c, "198.51.100.2").status_code for _ in range(2)] == [200, 200]


def test_the_defaults_limit_a_flood_from_one_address(tmp_path, monkeypatch):
    assert Config().verify_rate > 0
    # The flood arrives in one instant, however slow this machine is today:
    # no tokens come back while it is sent.
    monkeypatch.setattr("labelcheck.web.ratelimit.time", types.SimpleNamespace(monotonic=lambda: 1000.0))
    c = make_client(tmp_path)
    codes = [post(c, "198.51.100.9").status_code for _ in range(Config().verify_burst + 5)]
    assert codes.count(429) >= 4 and codes[0] == 200


def test_forwarded_address_counts_only_behind_a_trusted_proxy(tmp_path):
    c = make_client(tmp_path, verify_rate=0.01, verify_burst=1)
    # Behind the front (loopback peer): each forwarded client has its own bucket.
    for client_ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert post(c, "127.0.0.1", {"X-Forwarded-For": client_ip}).status_code == 200
    assert post(c, "127.0.0.1", {"X-Forwarded-For": "203.0.113.1"}).status_code == 429
    assert post(c, "127.0.0.1", {"X-Real-IP": "203.0.113.4"}).status_code == 200
    # A direct client cannot escape its bucket by inventing headers.
    assert post(c, "192.0.2.50", {"X-Forwarded-For": "203.0.113.77"}).status_code == 200
    assert post(c, "192.0.2.50", {"X-Forwarded-For": "203.0.113.78", "X-Real-IP": "203.0.113.79"}).status_code == 429


def test_forwarded_chain_takes_the_last_untrusted_hop():
    limiter = ClientRateLimiter(1, 1, trusted_proxies=("127.0.0.1", "10.0.0.0/8"))
    chain = {"X-Forwarded-For": "6.6.6.6, 203.0.113.8, 10.1.2.3"}
    assert limiter.client("127.0.0.1", chain) == "203.0.113.8"  # 6.6.6.6 is what the client claimed
    assert limiter.client("127.0.0.1", {"X-Forwarded-For": "garbage, 10.1.2.3"}) == "127.0.0.1"
    assert limiter.client("::ffff:127.0.0.1", {"X-Real-IP": "2001:db8::5"}) == "2001:db8::5"
    assert limiter.client("203.0.113.9", chain) == "203.0.113.9"


def test_ipv6_clients_count_per_64():
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    limiter = ClientRateLimiter(0.01, 1, trusted_proxies=())
    assert limiter.take("2001:db8:1:2::1", {}) == 0
    assert limiter.take("2001:db8:1:2::abcd", {}) > 0


def test_the_table_is_bounded_and_forgets_the_oldest():
    limiter = ClientRateLimiter(0.01, 1, trusted_proxies=(), capacity=3)
    for i in range(10):
        assert limiter.take(f"198.51.100.{i}", {}) == 0
    assert len(limiter) == 3
    assert limiter.take("198.51.100.9", {}) > 0  # still remembered
    assert limiter.take("198.51.100.0", {}) == 0  # forgotten: a fresh bucket


def test_rate_zero_turns_it_off():
    limiter = ClientRateLimiter(0, 1)
    assert all(limiter.take("198.51.100.1", {}) == 0 for _ in range(100)) and len(limiter) == 0


def test_bad_trusted_proxy_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="trusted_proxies"):
        create_app({"data_dir": tmp_path / "d", "trusted_proxies": "127.0.0.1 not-an-ip"})


def test_client_addresses_are_not_logged(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    c = make_client(tmp_path, verify_rate=0.01, verify_burst=1)
    post(c, "127.0.0.1", {"X-Forwarded-For": "203.0.113.200"})
    assert post(c, "127.0.0.1", {"X-Forwarded-For": "203.0.113.200"}).status_code == 429
    assert "203.0.113.200" not in caplog.text
