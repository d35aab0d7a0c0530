"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries,
``initdb`` into a temporary folder, ``pg_ctl`` to start it on 127.0.0.1 and
a Unix socket in that folder. PostgreSQL refuses to run as root, so as root
the cluster belongs to (and runs as) the ``postgres`` user that Debian's
package creates. Nothing here is mocked: it is the server users run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import psycopg
import pytest

from labelcheck.ledger import Ledger


class NoPostgres(Exception):
    """PostgreSQL's server binaries are not installed."""


def binaries() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise NoPostgres("PostgreSQL's server is not installed (Debian package postgresql)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One cluster: ``start()``, ``url(dbname)``, ``create_database(name)``, ``stop()``."""

    def __init__(self) -> None:
        self.bin = binaries()
        self.root = Path(tempfile.mkdtemp(prefix="labelcheck-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> "Cluster":
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        return self.resume()

    def resume(self) -> "Cluster":
        """Start the server (again, after ``halt``), on the same port and data."""
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
                   "-c max_connections=200 -c fsync=on -c shared_buffers=64MB")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")
        return self

    def halt(self) -> None:
        """Stop the server as an operator would (fast shutdown), keeping its data."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """A fresh, empty database; its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        deadline = time.monotonic() + 10
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)


class CuttingRelay:
    """A TCP relay on loopback to the database at ``url`` that, once ``arm``ed
    with a marker, cuts the connection whose server's reply holds it,
    before passing that reply on: the server did the work, the client
    never hears (a network cut at the worst moment). Or the connection
    whose client message holds it: the server never hears."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self._target = (parts.hostname, parts.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        netloc = parts.netloc.rsplit(":", 1)[0] + f":{self._listener.getsockname()[1]}"
        self.url = parts._replace(netloc=netloc).geturl()
        self.marker: bytes | None = None
        self.replies, self.then_refuse, self.closed = True, False, False
        self.after: bytes | None = None
        self.armed = 0
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, marker: bytes, *, after: bytes | None = None, replies: bool = True,
            then_refuse: bool = False) -> None:
        """Cut the connection whose next server reply (or, ``replies=False``,
        client message) holds ``marker`` (following ``after``, on that
        connection, when given), dropping it; ``then_refuse``: and refuse
        connections from then on (the database out of reach)."""
        self.cut.clear()
        self.replies, self.after, self.then_refuse = replies, after, then_refuse
        self.armed += 1
        self.marker = marker

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            if self.closed:
                client.close()
                return
            server = socket.create_connection(self._target)
            pair = (client, server)
            threading.Thread(target=self._relay, args=(client, server, pair, False), daemon=True).start()
            threading.Thread(target=self._relay, args=(server, client, pair, True), daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket, pair: tuple, replies: bool) -> None:
        seen = 0  # the arming in which ``after`` passed here
        try:
            while data := src.recv(65536):
                if replies == self.replies and self.marker is not None:
                    if self.after is not None and self.after in data:
                        seen = self.armed
                    if self.marker in data and (self.after is None or seen == self.armed):
                        self.marker = None
                        if self.then_refuse:
                            self.close()
                        self.cut.set()
                        break
                dst.sendall(data)
        except OSError:
            pass
        for sock in pair:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def cluster_or_skip():
    """A started cluster, to ``stop()`` after use; the test is skipped where
    PostgreSQL is not installed."""
    try:
        return Cluster().start()
    except NoPostgres as exc:
        pytest.skip(str(exc))


def two_nodes(tmp_path: Path, url: str, origin: str, first: list[dict], second_url: str | None = None):
    """Two ledgers on the database ``url`` (the second through ``second_url``
    when given), as two nodes sharing one ledger key: the first appends
    ``first`` and leads; (first node, second node)."""
    a = Ledger.open_dir(tmp_path / "a", origin=origin, database=url)
    a.append(first)
    deadline = time.monotonic() + 10
    while not a.sequencer.leader:
        assert time.monotonic() < deadline, "the first node never led"
        time.sleep(0.02)
    return a, node(tmp_path, "b", origin, second_url or url)


def node(tmp_path: Path, name: str, origin: str, url: str) -> Ledger:
    """One more node on the database ``url``, in ``tmp_path/name``, holding
    the ledger key of ``two_nodes``'s first node."""
    (tmp_path / name).mkdir()
    (tmp_path / name / "ledger.key").write_bytes((tmp_path / "a" / "ledger.key").read_bytes())
    (tmp_path / name / "ledger.key").chmod(0o600)
    return Ledger.open_dir(tmp_path / name, origin=origin, database=url)
