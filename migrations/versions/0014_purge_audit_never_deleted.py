"""audit log: no row is ever deleted, test or not (SQLite gets the same guard as PostgreSQL)

Delete-all and cleanup used to remove audit rows that concerned test data, and with them the
trail of grants and refunds made by test actors. The audit trail is evidence in both worlds.

Revision ID: 0014_purge
Revises: 0014_main
Create Date: 2026-12-06 18:00:00

"""
from alembic import op

revision = '0014_purge'
down_revision = '0014_main'
branch_labels = None
depends_on = None

# Only the foreign key's own SET NULL (the actor's account is gone) may touch a row.
PG_GUARD = """
CREATE OR REPLACE FUNCTION audit_log_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
     AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id')
     AND NOT EXISTS (SELECT 1 FROM users WHERE id = OLD.actor_id) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql
"""

# As revision 0003 left it.
PG_GUARD_BEFORE = """
CREATE OR REPLACE FUNCTION audit_log_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND OLD.is_test THEN
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
     AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id')
     AND NOT EXISTS (SELECT 1 FROM users WHERE id = OLD.actor_id) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql
"""

# Every column but actor_id (which the foreign key clears when an account is deleted).
SQLITE_COLUMNS = ("id, created_at, actor_label, action, target_type, target_id, target_label, before, after, "
                  "reason, ip_address, user_agent, is_test")
SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only (DELETE refused)'); END",
    f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE OF {SQLITE_COLUMNS} ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only (UPDATE refused)'); END",
)


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_GUARD)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_GUARD_BEFORE)
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
