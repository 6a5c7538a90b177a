"""One cleanup batch, worked out level by level in a temporary table before anything is deleted.

The ids of each level of the ownership graph are materialised (staged) from the level above,
so no statement nests more than two subqueries deep whatever the depth of the graph (the
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

A plan builds its statements once per run (the batch's ids are a bound parameter) and skips
every statement below a level that staged nothing.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import (BigInteger, Boolean, Column, ColumnElement, MetaData, String, Table, and_, bindparam, delete,
                        exists, false, func, insert, literal, not_, or_, select, text, true, update)
from sqlalchemy.schema import CreateTable

from app.sandbox.cleanup_graph import Edge, Graph

# Not on the app's metadata: no migration, no create_all; each connection gets its own.
STAGE = Table("cleanup_stage", MetaData(),
              Column("tbl", String(63), primary_key=True),
              Column("id", BigInteger, primary_key=True),
              Column("blocked", Boolean, nullable=False),
              prefixes=["TEMPORARY"], postgresql_on_commit="DROP")

RootCondition = Callable[[Table], ColumnElement]
Protected = dict[str, list[int]]  # table name -> ids that must stay (delete all: the actor's own rows)


def _stage_insert(name: str, key, conditions):
    """INSERT INTO the stage the keys selected (rowcount kept: later levels skip empty ones)."""
    return insert(STAGE).from_select(["tbl", "id", "blocked"], select(literal(name), key, false()).where(*conditions)) \
        .execution_options(preserve_rowcount=True)


def batch_ids():
    """The batch's root ids, bound at each run of a plan's statements."""
    return bindparam("batch_ids", expanding=True)


@dataclass
class Result:
    deleted: dict[str, int] = field(default_factory=dict)
    kept: int = 0  # root rows left because they own rows that stay


@dataclass
class _Step:
    table: str
    statement: object
    needs: str | None = None  # run only when this staged table holds rows
    rooted: bool = False  # carries the root condition (takes the batch's parameters)


class Plan:
    """The statements of a batch rooted at `root_condition` rows of `root`, built once.

    root_condition takes the table (or an alias) and may use batch_ids() for the batch.
    """

    def __init__(self, g: Graph, root: Table, root_condition: RootCondition, protected: Protected | None = None):
        self.g, self.root, self.protected = g, root, protected or {}
        scope = g.descendants(root.name)
        self.staged = [t for t in g.parents_first(scope) if g.owns_rows(t)]
        self.staged_names = {t.name for t in self.staged}
        if root.name not in self.staged_names:
            raise ValueError(f"{root.name} owns no rows: delete its rows directly")
        self.root_condition = root_condition
        self.staging = self._staging()
        self.blocking = [step for t in reversed(self.staged) if (step := self._blocking(t)) is not None]
        self.pruning = [self._pruning(t) for t in self.staged[1:]]
        self.deleting = [step for t in g.children_first(scope) for step in self._deleting(t)]

    # -- conditions -------------------------------------------------------------------------

    @staticmethod
    def _staged_ids(name: str, *, unblocked: bool = False):
        s = STAGE.alias()
        query = select(s.c.id).where(s.c.tbl == name)
        return query.where(s.c.blocked == false()) if unblocked else query

    def _in_scope_owners(self, table: Table) -> list[Edge]:
        return [e for e in self.g.owners[table.name] if e.parent.name in self.staged_names]

    def _goes(self, table: Table, sel) -> ColumnElement | None:
        """A leaf row under a deleted parent goes too (None: always)."""
        guard, kept = self.g.guard(table, sel), protected_row(self.g, self.protected, table, sel)
        parts = [c for c in (guard, None if kept is None else ~kept) if c is not None]
        return and_(*parts) if parts else None

    # -- the statements of the four steps ----------------------------------------------------

    def _staging(self) -> list[_Step]:
        root = self.root
        steps = [_Step(root.name, _stage_insert(root.name, row_id(root), [self.root_condition(root)]), rooted=True)]
        for table in self.staged[1:]:
            for edge in self._in_scope_owners(table):
                x, s = table.alias(), STAGE.alias()
                conditions = [x.c[edge.child_col].in_(self._staged_ids(edge.parent.name)),
                              ~exists().where(s.c.tbl == table.name, s.c.id == row_id(x))]
                guard, kept = self.g.guard(table, x), protected_row(self.g, self.protected, table, x)
                if guard is not None:  # without the column, its staged owner is the test row
                    conditions.append(guard)
                if kept is not None:
                    conditions.append(~kept)
                steps.append(_Step(table.name, _stage_insert(table.name, row_id(x), conditions),
                                   needs=edge.parent.name))
        return steps

    def _blocking(self, table: Table) -> _Step | None:
        """Block the staged rows of `table` that own a row that stays."""
        reasons = []
        for edge in self.g.children[table.name]:
            child = edge.child.alias()
            if edge.child.name in self.staged_names:
                s = STAGE.alias()
                stays = ~exists().where(s.c.tbl == edge.child.name, s.c.id == row_id(child), s.c.blocked == false())
            else:
                goes = self._goes(edge.child, child)
                if goes is None:
                    continue
                stays = not_(goes)
            reasons.append(exists().where(child.c[edge.child_col] == STAGE.c.id, stays))
        if not reasons:
            return None
        return _Step(table.name, update(STAGE).where(STAGE.c.tbl == table.name, STAGE.c.blocked == false(),
                                                     or_(*reasons)).values(blocked=True), needs=table.name)

    def _pruning(self, table: Table) -> _Step:
        """Block the staged rows of `table` left with no unblocked staged owner."""
        x = table.alias()
        reachable = or_(*[x.c[e.child_col].in_(self._staged_ids(e.parent.name, unblocked=True))
                          for e in self._in_scope_owners(table)])
        return _Step(table.name, update(STAGE).where(
            STAGE.c.tbl == table.name, STAGE.c.blocked == false(),
            ~exists().where(row_id(x) == STAGE.c.id, reachable)).values(blocked=True), needs=table.name)

    def _deleting(self, table: Table) -> list[_Step]:
        guard = self.g.guard_through(table)
        if guard is None:
            raise RuntimeError(f"{table.name}: no test marker on the row or its owner; refusing to delete")
        if table.name in self.staged_names:
            conditions = [row_id(table).in_(self._staged_ids(table.name, unblocked=True)), guard]
            for edge in self.g.children[table.name]:  # nothing it owns is left: no cascade can fire
                child = edge.child.alias()
                conditions.append(~exists().where(child.c[edge.child_col] == table.c[edge.parent_col]))
            rooted = table is self.root
            if rooted:
                conditions.append(self.root_condition(table))
            return [_Step(table.name, delete(table).where(*conditions), needs=table.name, rooted=rooted)]
        kept = protected_row(self.g, self.protected, table, table)
        extra = [] if kept is None else [~kept]
        steps = []
        for edge in self._in_scope_owners(table):  # a leaf goes through each of its staged owners
            under = table.c[edge.child_col].in_(self._staged_ids(edge.parent.name, unblocked=True))
            steps.append(_Step(table.name, delete(table).where(under, guard, *extra), needs=edge.parent.name))
        return steps

    # -- running ----------------------------------------------------------------------------

    def run(self, session, params: dict | None = None) -> Result:
        """Stage, block, prune and delete one batch (the caller owns the transaction)."""
        staged = self.stage(session, params)
        result = Result()
        if self.block(session, staged):
            for step in self.pruning:
                self._execute(session, step, staged, params)
            result.kept = self.kept_roots(session)
        result.deleted = dict(self._execute_all(session, self.deleting, staged, params, out=Counter()))
        self.clear(session)
        return result

    def stage(self, session, params: dict | None = None) -> Counter:
        """Stage the batch; returns rows staged per table."""
        session.execute(CreateTable(STAGE, if_not_exists=True))
        self.clear(session)
        staged = self._execute_all(session, self.staging, Counter(), params)
        if session.get_bind().dialect.name == "postgresql":
            # Autovacuum never sees temporary tables: without statistics the planner takes the
            # stage for a few rows and nests loops over thousands (seconds per batch).
            session.execute(text("ANALYZE cleanup_stage"))
        return staged

    def block(self, session, staged: Counter) -> int:
        """Block, children first, what owns a row that stays; returns the blocked staged rows."""
        for step in self.blocking:
            self._execute(session, step, staged)
        return session.scalar(select(func.count()).select_from(STAGE).where(STAGE.c.blocked == true())) or 0

    def kept_roots(self, session) -> int:
        return session.scalar(select(func.count()).select_from(STAGE).where(
            STAGE.c.tbl == self.root.name, STAGE.c.blocked == true())) or 0

    def unblocked_roots(self):
        return self._staged_ids(self.root.name, unblocked=True)

    @staticmethod
    def clear(session) -> None:
        """Empty the stage (PostgreSQL drops it at commit; SQLite keeps it per connection)."""
        session.execute(delete(STAGE))

    @staticmethod
    def _execute(session, step: _Step, staged: Counter, params: dict | None = None) -> int:
        if step.needs is not None and not staged[step.needs]:
            return 0
        return session.execute(step.statement, params if step.rooted and params else None).rowcount

    def _execute_all(self, session, steps: list[_Step], staged: Counter, params: dict | None,
                     out: Counter | None = None) -> Counter:
        """Run steps in order, counting rows per table into `out` (default: `staged` itself, so
        that a level staged by a step is seen by the next ones)."""
        out = staged if out is None else out
        for step in steps:
            rows = self._execute(session, step, staged, params)
            if rows:
                out[step.table] += rows
        return out


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


def owned_by(session, g: Graph, table: Table, keys: list[int]) -> Protected:
    """Ids of the rows and of every staged-kind row hanging from them (unguarded): what must stay."""
    ids: Protected = {table.name: sorted(keys)}
    if not keys:
        return {}
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
