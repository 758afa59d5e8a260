"""Database-level refusal of UPDATE, DELETE and TRUNCATE on ledger tables (DESIGN rule 1).

The application never issues them; the triggers make the database refuse them too, so only
someone who first drops the triggers (the schema owner, not the writer role) can tamper, and
the hashes catch that.
"""

from __future__ import annotations

from events.db import Cursor, Dialect
from events.idempotency import TABLE as IDEMPOTENCY_KEYS
from events.job_rows import TABLE as JOBS
from events.notice_failure_rows import TABLE as NOTICE_FAILURES
from events.schema import APPEND_ONLY_TABLES, MID_LINKS, RECENT_LINKS
from events.sealing import DESTROY_FUNCTION, DISPOSED_TYPE
from events.session_clocks import TABLE as SESSION_CLOCKS
from events.throttle_tables import TABLES as THROTTLE_TABLES
from events.tiles import FULL_TILE_BYTES

WRITER_ROLE = "chartledger_writer"
# An UPDATE of a tile that is anything but a partial tile gaining hashes at its end.
_TILE_CHANGED = (
    f"length(OLD.hashes) >= {FULL_TILE_BYTES} OR NEW.level <> OLD.level OR NEW.idx <> OLD.idx "
    "OR length(NEW.hashes) < length(OLD.hashes) "
    "OR substr(NEW.hashes, 1, length(OLD.hashes)) <> OLD.hashes"
)

# An UPDATE of a subject's head that is anything but the subject moving to a later link.
_HEAD_CHANGED = "NEW.subject <> OLD.subject OR NEW.seq <= OLD.seq OR NEW.position <= OLD.position"


def _sqlite_statements() -> list[str]:
    statements = []
    for table in APPEND_ONLY_TABLES:
        for action in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_refuse_{action.lower()} "
                f"BEFORE {action} ON {table} BEGIN "
                f"SELECT RAISE(ABORT, 'chartledger: {table} is append-only, {action} refused'); "
                f"END"
            )
    statements.append(
        "CREATE TRIGGER IF NOT EXISTS ledger_data_keys_refuse_update "
        "BEFORE UPDATE ON ledger_data_keys BEGIN "
        "SELECT RAISE(ABORT, 'chartledger: data keys are never rewritten, UPDATE refused'); END"
    )
    statements += [
        f"CREATE TRIGGER IF NOT EXISTS {RECENT_LINKS}_refuse_update "
        f"BEFORE UPDATE ON {RECENT_LINKS} BEGIN "
        "SELECT RAISE(ABORT, 'chartledger: recent links are never rewritten, UPDATE refused'); END",
        f"CREATE TRIGGER IF NOT EXISTS {RECENT_LINKS}_refuse_delete "
        f"BEFORE DELETE ON {RECENT_LINKS} WHEN NOT EXISTS (SELECT 1 FROM ledger_links_main "
        "WHERE subject = OLD.subject AND seq = OLD.seq AND position = OLD.position) "
        f"AND NOT EXISTS (SELECT 1 FROM {MID_LINKS} "
        "WHERE subject = OLD.subject AND seq = OLD.seq AND position = OLD.position) BEGIN "
        "SELECT RAISE(ABORT, 'chartledger: a recent link leaves only once merged, "
        "DELETE refused'); END",
        f"CREATE TRIGGER IF NOT EXISTS {MID_LINKS}_refuse_update "
        f"BEFORE UPDATE ON {MID_LINKS} BEGIN "
        "SELECT RAISE(ABORT, 'chartledger: links are never rewritten, UPDATE refused'); END",
        f"CREATE TRIGGER IF NOT EXISTS {MID_LINKS}_refuse_delete "
        f"BEFORE DELETE ON {MID_LINKS} WHEN NOT EXISTS (SELECT 1 FROM ledger_links_main "
        "WHERE subject = OLD.subject AND seq = OLD.seq AND position = OLD.position) BEGIN "
        "SELECT RAISE(ABORT, 'chartledger: a recent link leaves only once merged, "
        "DELETE refused'); END",
    ]
    statements += [
        # A tile only grows: a full one never changes, a partial one only gains hashes.
        "CREATE TRIGGER IF NOT EXISTS ledger_tiles_refuse_delete BEFORE DELETE ON ledger_tiles "
        "BEGIN SELECT RAISE(ABORT, 'chartledger: a tile only grows, DELETE refused'); END",
        "CREATE TRIGGER IF NOT EXISTS ledger_tiles_refuse_update BEFORE UPDATE ON ledger_tiles "
        f"WHEN {_TILE_CHANGED} BEGIN "
        "SELECT RAISE(ABORT, 'chartledger: a tile only grows, UPDATE refused'); END",
        # A subject's head only moves forward, and no subject leaves.
        "CREATE TRIGGER IF NOT EXISTS ledger_heads_refuse_delete BEFORE DELETE ON ledger_heads "
        "BEGIN SELECT RAISE(ABORT, 'chartledger: a head only moves forward, DELETE refused'); "
        "END",
        "CREATE TRIGGER IF NOT EXISTS ledger_heads_refuse_update BEFORE UPDATE ON ledger_heads "
        f"WHEN {_HEAD_CHANGED} BEGIN "
        "SELECT RAISE(ABORT, 'chartledger: a head only moves forward, UPDATE refused'); END",
    ]
    statements.append(
        "CREATE TRIGGER IF NOT EXISTS stored_events_require_leaf "
        "BEFORE INSERT ON stored_events WHEN NOT EXISTS (SELECT 1 FROM ledger_leaves "
        "WHERE position = NEW.position AND stream = NEW.originator_id "
        "AND version = NEW.originator_version) BEGIN "
        "SELECT RAISE(ABORT, 'chartledger: an event without its ledger leaf is refused'); END"
    )
    return statements


def _postgres_statements(schema: str) -> list[str]:
    s = f'"{schema}"'
    statements = [
        f"CREATE OR REPLACE FUNCTION {s}.chartledger_refuse() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
        "'chartledger: % is append-only, % refused', TG_TABLE_NAME, TG_OP "
        "USING ERRCODE = 'insufficient_privilege'; END $$",
        f"CREATE OR REPLACE FUNCTION {s}.chartledger_refuse_unmerged() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NOT EXISTS (SELECT 1 FROM {s}.ledger_links_main WHERE subject = OLD.subject "
        "AND seq = OLD.seq AND position = OLD.position) "
        f"AND (TG_TABLE_NAME <> '{RECENT_LINKS}' OR NOT EXISTS (SELECT 1 FROM {s}.{MID_LINKS} "
        "WHERE subject = OLD.subject AND seq = OLD.seq AND position = OLD.position)) "
        "THEN RAISE EXCEPTION "
        "'chartledger: a recent link leaves only once merged, DELETE refused' "
        "USING ERRCODE = 'insufficient_privilege'; END IF; RETURN OLD; END $$",
        f"CREATE OR REPLACE FUNCTION {s}.chartledger_require_leaf() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NOT EXISTS (SELECT 1 FROM {s}.ledger_leaves WHERE position = NEW.position "
        "AND stream = NEW.originator_id AND version = NEW.originator_version) THEN RAISE EXCEPTION "
        "'chartledger: an event without its ledger leaf is refused' "
        "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; END $$",
        _destroy_function(s),
        f"CREATE OR REPLACE FUNCTION {s}.chartledger_tile_grows() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'UPDATE' OR {_TILE_CHANGED} THEN RAISE EXCEPTION "
        "'chartledger: a tile only grows, % refused', TG_OP "
        "USING ERRCODE = 'insufficient_privilege'; END IF; RETURN NEW; END $$",
        f"CREATE OR REPLACE FUNCTION {s}.chartledger_head_moves() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'UPDATE' OR {_HEAD_CHANGED} THEN RAISE EXCEPTION "
        "'chartledger: a head only moves forward, % refused', TG_OP "
        "USING ERRCODE = 'insufficient_privilege'; END IF; RETURN NEW; END $$",
    ]
    for table in APPEND_ONLY_TABLES:
        statements.append(
            f"CREATE OR REPLACE TRIGGER {table}_refuse_change BEFORE UPDATE OR DELETE "
            f"ON {s}.{table} FOR EACH ROW EXECUTE FUNCTION {s}.chartledger_refuse()"
        )
        statements.append(
            f"CREATE OR REPLACE TRIGGER {table}_refuse_truncate BEFORE TRUNCATE "
            f"ON {s}.{table} FOR EACH STATEMENT EXECUTE FUNCTION {s}.chartledger_refuse()"
        )
    statements += [
        f"CREATE OR REPLACE TRIGGER {RECENT_LINKS}_refuse_update BEFORE UPDATE "
        f"ON {s}.{RECENT_LINKS} FOR EACH ROW EXECUTE FUNCTION {s}.chartledger_refuse()",
        f"CREATE OR REPLACE TRIGGER {RECENT_LINKS}_refuse_truncate BEFORE TRUNCATE "
        f"ON {s}.{RECENT_LINKS} FOR EACH STATEMENT EXECUTE FUNCTION {s}.chartledger_refuse()",
        f"CREATE OR REPLACE TRIGGER {RECENT_LINKS}_refuse_delete BEFORE DELETE "
        f"ON {s}.{RECENT_LINKS} FOR EACH ROW EXECUTE FUNCTION {s}.chartledger_refuse_unmerged()",
        f"CREATE OR REPLACE TRIGGER {MID_LINKS}_refuse_update BEFORE UPDATE "
        f"ON {s}.{MID_LINKS} FOR EACH ROW EXECUTE FUNCTION {s}.chartledger_refuse()",
        f"CREATE OR REPLACE TRIGGER {MID_LINKS}_refuse_truncate BEFORE TRUNCATE "
        f"ON {s}.{MID_LINKS} FOR EACH STATEMENT EXECUTE FUNCTION {s}.chartledger_refuse()",
        f"CREATE OR REPLACE TRIGGER {MID_LINKS}_refuse_delete BEFORE DELETE "
        f"ON {s}.{MID_LINKS} FOR EACH ROW EXECUTE FUNCTION {s}.chartledger_refuse_unmerged()",
        f"CREATE OR REPLACE TRIGGER ledger_data_keys_refuse_update BEFORE UPDATE "
        f"ON {s}.ledger_data_keys FOR EACH ROW EXECUTE FUNCTION {s}.chartledger_refuse()",
        f"CREATE OR REPLACE TRIGGER ledger_tiles_grow_only BEFORE UPDATE OR DELETE "
        f"ON {s}.ledger_tiles FOR EACH ROW EXECUTE FUNCTION {s}.chartledger_tile_grows()",
        f"CREATE OR REPLACE TRIGGER ledger_tiles_refuse_truncate BEFORE TRUNCATE "
        f"ON {s}.ledger_tiles FOR EACH STATEMENT EXECUTE FUNCTION {s}.chartledger_refuse()",
        f"CREATE OR REPLACE TRIGGER ledger_heads_move_only BEFORE UPDATE OR DELETE "
        f"ON {s}.ledger_heads FOR EACH ROW EXECUTE FUNCTION {s}.chartledger_head_moves()",
        f"CREATE OR REPLACE TRIGGER ledger_heads_refuse_truncate BEFORE TRUNCATE "
        f"ON {s}.ledger_heads FOR EACH STATEMENT EXECUTE FUNCTION {s}.chartledger_refuse()",
        f"CREATE OR REPLACE TRIGGER stored_events_require_leaf BEFORE INSERT "
        f"ON {s}.stored_events FOR EACH ROW EXECUTE FUNCTION {s}.chartledger_require_leaf()",
    ]
    return statements


def _destroy_function(s: str) -> str:
    """The one way the writer role deletes a data key: a patient's, with the ``Disposed`` event
    of the disposal naming it appended in the same transaction (its row's xmin is this
    transaction's id), so that no key leaves without a disposal on the log for
    `chartledger verify` to check the key against. SECURITY DEFINER: it runs as the schema
    owner, who alone holds DELETE on the table."""
    return (
        f"CREATE OR REPLACE FUNCTION {s}.{DESTROY_FUNCTION}(key_name text, disposal uuid) "
        f"RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = {s}, pg_catalog "
        "AS $$ BEGIN "
        "IF key_name NOT LIKE 'patient:%' THEN RAISE EXCEPTION "
        "'chartledger: only a patient''s data key is ever disposed of, DELETE refused' "
        "USING ERRCODE = 'insufficient_privilege'; END IF; "
        f"IF NOT EXISTS (SELECT 1 FROM {s}.stored_events WHERE originator_id = disposal "
        f"AND originator_version = 1 AND topic = '{DISPOSED_TYPE}' "
        "AND xmin = pg_current_xact_id()::xid) THEN RAISE EXCEPTION "
        "'chartledger: a data key is destroyed only with its Disposed event, appended in the "
        "same transaction; DELETE refused' USING ERRCODE = 'insufficient_privilege'; END IF; "
        f"DELETE FROM {s}.ledger_data_keys WHERE name = key_name; END $$"
    )


def writer_role_statements(schema: str) -> list[str]:
    """The role the application writes as: it owns nothing, so it cannot drop the triggers."""
    s = f'"{schema}"'
    return [
        f"DO $$ BEGIN CREATE ROLE {WRITER_ROLE} NOLOGIN; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        f"GRANT USAGE ON SCHEMA {s} TO {WRITER_ROLE}",
        # UPDATE only because LOCK TABLE ... IN EXCLUSIVE MODE demands it; the triggers refuse it.
        f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {s} TO {WRITER_ROLE}",
        f"GRANT DELETE ON {s}.{RECENT_LINKS} TO {WRITER_ROLE}",
        f"GRANT DELETE ON {s}.{MID_LINKS} TO {WRITER_ROLE}",
        # Idempotency keys are not ledger rows: they expire and are deleted (events/idempotency.py).
        f"GRANT DELETE ON {s}.{IDEMPOTENCY_KEYS} TO {WRITER_ROLE}",
        # Job rows likewise: progress updates them, and old ones are deleted (api/jobs/).
        f"GRANT DELETE ON {s}.{JOBS} TO {WRITER_ROLE}",
        # Idle clocks likewise: moved forward, deleted once over (events/session_clocks.py).
        f"GRANT DELETE ON {s}.{SESSION_CLOCKS} TO {WRITER_ROLE}",
        # The login throttle's counts likewise (events/throttle_tables.py).
        *(f"GRANT DELETE ON {s}.{table} TO {WRITER_ROLE}" for table in THROTTLE_TABLES),
        # The hold notices' failing deliveries: each round rewrites them
        # (events/notice_failure_rows.py).
        f"GRANT DELETE ON {s}.{NOTICE_FAILURES} TO {WRITER_ROLE}",
        # A data key only through the function (stores made before it had DELETE granted).
        f"REVOKE DELETE, TRUNCATE ON {s}.ledger_data_keys FROM {WRITER_ROLE}",
        f"REVOKE ALL ON FUNCTION {s}.{DESTROY_FUNCTION}(text, uuid) FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {s}.{DESTROY_FUNCTION}(text, uuid) TO {WRITER_ROLE}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {WRITER_ROLE}",
    ]


def install_guards(cursor: Cursor, dialect: Dialect, schema: str) -> None:
    if dialect == "sqlite":
        for statement in _sqlite_statements():
            cursor.execute(statement)
    else:
        for statement in _postgres_statements(schema) + writer_role_statements(schema):
            cursor.execute(statement)
