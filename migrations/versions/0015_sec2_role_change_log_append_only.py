"""role_change_log is append-only on PostgreSQL, like the audit log (issue 15, item 12)

Who gave whom which role is evidence: no UPDATE and no DELETE of a production row. Allowed: a
DELETE of a test row (test-data cleanup), and the UPDATE a foreign key's ON DELETE SET NULL makes
when the target, the actor or a role is deleted (only those references turn NULL; every other
column, changed_by_label included, stays as it was).

PostgreSQL only, as the audit log and the ledgers: on SQLite (the embedded default, one machine)
a batch migration rebuilds a table and drops its triggers, so a trigger there would promise more
than it keeps.

Revision ID: 0015_sec2
Revises: 0014_main
"""
from alembic import op

revision = '0015_sec2'
down_revision = '0015_sec_2'
branch_labels = None
depends_on = None

GUARD = """
CREATE OR REPLACE FUNCTION role_change_log_guard() RETURNS trigger AS $$
DECLARE
  refs text[] := ARRAY['target_user_id', 'changed_by_id', 'old_role_id', 'new_role_id'];
BEGIN
  IF TG_OP = 'DELETE' AND OLD.is_test THEN
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - refs) = (to_jsonb(OLD) - refs)
     AND NOT EXISTS (SELECT 1 FROM jsonb_each_text(to_jsonb(NEW)) e
                     WHERE e.key = ANY(refs) AND e.value IS NOT NULL
                       AND e.value IS DISTINCT FROM to_jsonb(OLD) ->> e.key) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'role_change_log is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(GUARD)
    op.execute("CREATE TRIGGER role_change_log_append_only BEFORE UPDATE OR DELETE ON role_change_log "
               "FOR EACH ROW EXECUTE FUNCTION role_change_log_guard()")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS role_change_log_append_only ON role_change_log")
    op.execute("DROP FUNCTION IF EXISTS role_change_log_guard()")
