"""One cleanup batch, worked out level by level in a temporary table before anything is deleted.

The ids of each level of the ownership graph are materialised (staged) from the level above,
so no statement nests more than three subqueries deep whatever the depth of the graph (the
nested form, one subquery per level, overflowed SQLite's parser once every domain had its
tables). A batch, in one transaction:

1. stage: the root rows (a batch of accounts, or of one table's test rows), then, parents
   first, every test row hanging from a staged row, for the tables that own rows themselves
   (a leaf row is reached through its parent and needs no staging);
2. block, children first: a staged row that owns a row that is not going to be deleted (a
   production row, a blocked or protected one) is blocked, and so, level by level, is
   everything above it;
3. prune, parents first (only when something was blocked): a staged row whose staged owners
   are all blocked is blocked too, so a kept account is kept whole;
4. delete, children first: leaf rows through their unblocked staged parents, staged rows by id.

The guard stays in the SQL of every DELETE: `is_test = true` on the row (or on its owning
parent for rows without the column), and a staged row goes only if nothing it owns is left,
so no cascade ever fires and no statement can reach a production row, whatever was staged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import (BigInteger, Boolean, Column, ColumnElement, MetaData, String, Table, and_, delete, exists,
                        false, func, insert, literal, not_, or_, select, true, update)
from sqlalchemy.schema import CreateTable

from app.testdata.cleanup_graph import Edge, Graph

# Not on the app's metadata: no migration, no create_all; each connection gets its own.
STAGE = Table("cleanup_stage", MetaData(),
              Column("tbl", String(63), primary_key=True),
              Column("id", BigInteger, primary_key=True),
              Column("blocked", Boolean, nullable=False),
              prefixes=["TEMPORARY"], postgresql_on_commit="DROP")

RootCondition = Callable[[Table], ColumnElement]
Protected = dict[str, list[int]]  # table name -> ids that must stay (delete all: the actor's own rows)


@dataclass
class Result:
    deleted: dict[str, int] = field(default_factory=dict)
    kept: int = 0  # root rows left because they own rows that stay


class Plan:
    """The tables a batch rooted at `root` reaches, in the orders the four steps need."""

    def __init__(self, g: Graph, root: Table, protected: Protected | None = None):
        self.g, self.root, self.protected = g, root, protected or {}
        scope = g.descendants(root.name)
        self.staged = [t for t in g.parents_first(scope) if g.owns_rows(t)]
        self.staged_names = {t.name for t in self.staged}
        self.children_first = g.children_first(scope)
        if root.name not in self.staged_names:
            raise ValueError(f"{root.name} owns no rows: delete its rows directly")

    # -- conditions -------------------------------------------------------------------------

    @staticmethod
    def _staged_ids(name: str, *, unblocked: bool = False):
        s = STAGE.alias()
        query = select(s.c.id).where(s.c.tbl == name)
        return query.where(s.c.blocked == false()) if unblocked else query

    def _in_scope_owners(self, table: Table) -> list[Edge]:
        return [e for e in self.g.owners[table.name] if e.parent.name in self.staged_names]

    def protected_row(self, table: Table, sel) -> ColumnElement | None:
        return protected_row(self.g, self.protected, table, sel)

    def _goes(self, table: Table, sel) -> ColumnElement | None:
        """A leaf row under a deleted parent goes too (None: always)."""
        guard, kept = self.g.guard(table, sel), self.protected_row(table, sel)
        parts = [c for c in (guard, None if kept is None else ~kept) if c is not None]
        return and_(*parts) if parts else None

    def _nothing_left_below(self, table: Table) -> list[ColumnElement]:
        """The row owns no row any more: deleting it cascades to nothing."""
        conditions = []
        for edge in self.g.children[table.name]:
            child = edge.child.alias()
            conditions.append(~exists().where(child.c[edge.child_col] == table.c[edge.parent_col]))
        return conditions

    # -- the four steps ---------------------------------------------------------------------

    def stage(self, session, root_condition: RootCondition) -> None:
        session.execute(CreateTable(STAGE, if_not_exists=True))
        self.clear(session)
        root = self.root
        session.execute(insert(STAGE).from_select(
            ["tbl", "id", "blocked"], select(literal(root.name), row_id(root), false()).where(root_condition(root))))
        for table in self.staged[1:]:
            for edge in self._in_scope_owners(table):
                x, s = table.alias(), STAGE.alias()
                conditions = [x.c[edge.child_col].in_(self._staged_ids(edge.parent.name)),
                              ~exists().where(s.c.tbl == table.name, s.c.id == row_id(x))]
                guard, kept = self.g.guard(table, x), self.protected_row(table, x)
                if guard is not None:  # without the column, its staged owner is the test row
                    conditions.append(guard)
                if kept is not None:
                    conditions.append(~kept)
                session.execute(insert(STAGE).from_select(
                    ["tbl", "id", "blocked"], select(literal(table.name), row_id(x), false()).where(*conditions)))

    def block(self, session) -> int:
        """Block, children first, what owns a row that stays; returns blocked staged rows."""
        for table in reversed(self.staged):
            reasons = []
            for edge in self.g.children[table.name]:
                child = edge.child.alias()
                if edge.child.name in self.staged_names:
                    s = STAGE.alias()
                    stays = ~exists().where(s.c.tbl == edge.child.name, s.c.id == row_id(child),
                                            s.c.blocked == false())
                else:
                    goes = self._goes(edge.child, child)
                    if goes is None:
                        continue
                    stays = not_(goes)
                reasons.append(exists().where(child.c[edge.child_col] == STAGE.c.id, stays))
            if reasons:
                session.execute(update(STAGE).where(STAGE.c.tbl == table.name, STAGE.c.blocked == false(),
                                                    or_(*reasons)).values(blocked=True))
        return session.scalar(select(func.count()).select_from(STAGE).where(STAGE.c.blocked == true())) or 0

    def prune(self, session) -> None:
        """Block, parents first, staged rows left with no unblocked staged owner."""
        for table in self.staged[1:]:
            x = table.alias()
            reachable = or_(*[x.c[e.child_col].in_(self._staged_ids(e.parent.name, unblocked=True))
                              for e in self._in_scope_owners(table)])
            session.execute(update(STAGE).where(
                STAGE.c.tbl == table.name, STAGE.c.blocked == false(),
                ~exists().where(row_id(x) == STAGE.c.id, reachable)).values(blocked=True))

    def kept_roots(self, session) -> int:
        return session.scalar(select(func.count()).select_from(STAGE).where(
            STAGE.c.tbl == self.root.name, STAGE.c.blocked == true())) or 0

    def unblocked_roots(self):
        return self._staged_ids(self.root.name, unblocked=True)

    def delete(self, session, root_condition: RootCondition) -> dict[str, int]:
        counts: dict[str, int] = {}
        for table in self.children_first:
            guard = self.g.guard_through(table)
            if guard is None:
                raise RuntimeError(f"{table.name}: no test marker on the row or its owner; refusing to delete")
            if table.name in self.staged_names:
                conditions = [row_id(table).in_(self._staged_ids(table.name, unblocked=True)), guard,
                              *self._nothing_left_below(table)]
                if table is self.root:
                    conditions.append(root_condition(table))
                statements = [delete(table).where(*conditions)]
            else:
                kept = self.protected_row(table, table)
                extra = [] if kept is None else [~kept]
                statements = [delete(table).where(table.c[e.child_col].in_(self._staged_ids(e.parent.name, unblocked=True)),
                                                  guard, *extra)
                              for e in self._in_scope_owners(table)]
            rows = sum(session.execute(statement).rowcount for statement in statements)
            if rows:
                counts[table.name] = rows
        self.clear(session)
        return counts

    @staticmethod
    def clear(session) -> None:
        """Empty the stage (PostgreSQL drops it at commit; SQLite keeps it per connection)."""
        session.execute(delete(STAGE))


def protected_row(g: Graph, protected: Protected, table: Table, sel) -> ColumnElement | None:
    """Rows that must stay: listed by id for tables that own rows, through their owner for leaves."""
    if g.owns_rows(table):
        ids = protected.get(table.name)
        return row_id(sel).in_(ids) if ids else None
    clauses = [sel.c[e.child_col].in_(protected[e.parent.name])
               for e in g.owners[table.name] if protected.get(e.parent.name)]
    return or_(*clauses) if clauses else None


def row_id(sel):
    """The one integer key of a table that owns rows (the graph refuses any other kind)."""
    return list(sel.primary_key)[0]


def run_batch(session, plan: Plan, root_condition: RootCondition) -> Result:
    """Stage, block, prune and delete one batch (the caller owns the transaction)."""
    plan.stage(session, root_condition)
    result = Result()
    if plan.block(session):
        plan.prune(session)
        result.kept = plan.kept_roots(session)
    result.deleted = plan.delete(session, root_condition)
    return result


def owned_by(session, g: Graph, table: Table, key: int) -> Protected:
    """Ids of the row and of every staged-kind row hanging from it (unguarded): what must stay."""
    ids: Protected = {table.name: [key]}
    for child in g.parents_first(g.descendants(table.name) - {table.name}):
        if not g.owns_rows(child):
            continue
        found: set[int] = set()
        for edge in g.owners[child.name]:
            if ids.get(edge.parent.name):
                found.update(session.scalars(select(row_id(child)).where(
                    child.c[edge.child_col].in_(ids[edge.parent.name]))))
        if found:
            ids[child.name] = sorted(found)
    return ids
