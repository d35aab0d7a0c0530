"""A C2SP tlog-witness: cosigns a log's checkpoints after checking that each
is consistent with the last one it cosigned (docs/protocol.md §10).

:mod:`.state` keeps the latest cosigned checkpoint per log, :mod:`.protocol`
answers ``add-checkpoint`` bodies (no HTTP inside), :mod:`.app` serves it.
"""
