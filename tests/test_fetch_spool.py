"""The fetched-body spool: small bodies stay in memory, big ones move to a
temporary file, and either reads back exactly the bytes written."""

from __future__ import annotations

import os

import pytest

from labelcheck.fetch.spool import Spool


@pytest.mark.parametrize("sizes", [[], [10], [3, 4, 5], [40, 40, 40], [200], [64, 64, 1]])
def test_reads_back_the_bytes_written_in_memory_or_on_disk(sizes):
    chunks = [os.urandom(n) for n in sizes]
    with Spool(in_memory=128) as spool:
        for chunk in chunks:
            spool.write(chunk)
        body = spool.reader()
        assert spool.size == sum(sizes)
        assert body.read() == b"".join(chunks)
        body.seek(1)
        assert body.read(3) == b"".join(chunks)[1:4]
        on_disk = spool._file is not None
    assert on_disk == (sum(sizes) > 128)


def test_closing_removes_the_temporary_file():
    spool = Spool(in_memory=4)
    spool.write(b"more than four bytes")
    file = spool.reader()
    spool.close()
    assert file.closed
