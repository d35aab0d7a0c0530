"""The ledger's PostgreSQL schema as versioned migrations (docs/protocol.md §11).

``migrate(conn)`` applies, in order and each in its own transaction, every
migration not yet recorded in ``schema_migrations(component, version, name,
applied_at)``. Every server node runs it at start; a transaction-level
advisory lock makes concurrent starts take turns, so each migration runs
once. A database recording a newer version of the ledger schema than this
labelcheck knows is refused rather than written to.

The tables mirror the SQLite store (``store``): ``ledger_meta``,
``ledger_entries``, ``ledger_hashes`` (Go tlog's stored-hash layout) and
``ledger_checkpoints``, each refusing UPDATE, DELETE and TRUNCATE by trigger.
``ledger_queue`` holds appends waiting for the sequencer (``sequencer``): it
is the only ledger table rows leave.
"""

from __future__ import annotations

import psycopg

COMPONENT = "ledger"
MIGRATION_LOCK = 0x6C6162656C636B01  # pg_advisory_xact_lock key: "labelck" + 1
META_SCHEMA = "1"  # ledger_meta's "schema": one hash per ledger_hashes row (COPY writes them)

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "ledger tables", [
        "CREATE TABLE ledger_meta (key text PRIMARY KEY, value text NOT NULL)",
        "CREATE TABLE ledger_entries (idx bigint PRIMARY KEY, data bytea NOT NULL)",
        "CREATE TABLE ledger_hashes (id bigint PRIMARY KEY, hash bytea NOT NULL)",
        "CREATE TABLE ledger_checkpoints (size bigint PRIMARY KEY, note bytea NOT NULL, "
        "signed_at double precision NOT NULL)",
        """CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
           END $$""",
        *[f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
          "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
          for t in ("ledger_meta", "ledger_entries", "ledger_hashes", "ledger_checkpoints")],
        *[f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
          "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
          for t in ("ledger_meta", "ledger_entries", "ledger_hashes", "ledger_checkpoints")],
        f"INSERT INTO ledger_meta(key, value) VALUES ('schema', '{META_SCHEMA}')",
    ]),
    (2, "sequencer queue", [
        # records: a JSON array of records to append; first/size: set by the
        # sequencer in the transaction that appends them (first entry index,
        # size of the signed checkpoint that covers them).
        "CREATE TABLE ledger_queue (id bigserial PRIMARY KEY, records text NOT NULL, "
        "queued_at timestamptz NOT NULL DEFAULT now(), first bigint, size bigint, error text)",
        "CREATE INDEX ledger_queue_pending ON ledger_queue (id) WHERE size IS NULL AND error IS NULL",
    ]),
    (3, "queue row tokens", [
        # A random token its node gives each row, to find it again when the
        # reply to its INSERT was lost (``queue_append``); none from older nodes.
        "ALTER TABLE ledger_queue ADD COLUMN token text",
    ]),
]

LATEST = MIGRATIONS[-1][0]


class SchemaError(Exception):
    """The database holds a ledger schema this labelcheck cannot use."""


def applied(conn: psycopg.Connection) -> int:
    """The newest ledger migration recorded (0 for none)."""
    row = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
    if row[0] is None:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_migrations WHERE component = %s", (COMPONENT,)).fetchone()
    return row[0] or 0


def migrate(conn: psycopg.Connection) -> int:
    """Apply the ledger's missing migrations (``conn`` in autocommit mode); the version reached."""
    return apply_migrations(conn, COMPONENT, MIGRATIONS)


def apply_migrations(conn: psycopg.Connection, component: str, migrations) -> int:
    """Apply ``migrations`` ((version, name, statements), ascending) of
    ``component`` not yet recorded in ``schema_migrations``, each in its own
    transaction, taking turns with every other node (one advisory lock for
    every component). Raises SchemaError for a database newer than the code."""
    latest = migrations[-1][0]
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (component text NOT NULL, "
                     "version integer NOT NULL, name text NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))")
    have = 0
    for version, name, statements in migrations:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            have = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations WHERE component = %s",
                                (component,)).fetchone()[0]
            if have > latest:
                raise SchemaError(f"the database holds {component} schema version {have}; "
                                  f"this labelcheck knows up to {latest}")
            if version <= have:
                continue
            for sql in statements:
                conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations(component, version, name) VALUES (%s, %s, %s)",
                         (component, version, name))
            have = version
    return have
