"""labelcheck: checkable AI-content labels.

Sub-packages, dependencies pointing one way (``tests/test_layout.py``)::

    cli -> web -> demo -> pipeline -> {claims, labels, fetch} -> ledger -> util
    cli -> audit -> ledger

The formats and the HTTP API are described in ``docs/protocol.md``.
"""
