"""Which rows own which, read from the SQLAlchemy metadata, and the guarded SQL built on it.

Ownership: a foreign key whose ON DELETE is CASCADE, RESTRICT or NO ACTION (the child cannot
outlive its parent) makes the child part of its parent; SET NULL is a reference (the child
outlives the parent and the database clears the link). Self-references are references too:
a test account never drags down the accounts it created. Tables added by later issues are
covered by declaring their foreign keys; nothing here names a domain table.

The guard is in the SQL: every condition built here requires `is_test = true` on the table
itself where it has the column, and on every parent it hangs from, with `account_type =
'test'` for users. A row that owns (directly or further down) a row not marked as test is
kept, with everything above it, so no cascade can ever reach a production row.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import ColumnElement, MetaData, Table, and_, exists, false, or_, select, true

REFERENCE_ACTIONS = {"SET NULL", "SET DEFAULT"}
USERS = "users"

RootFilter = Callable[[Table], ColumnElement]


@dataclass(frozen=True)
class Edge:
    child: Table
    child_col: str
    parent: Table
    parent_col: str


class Graph:
    """Ownership and reference edges of one MetaData, parents-first table order."""

    def __init__(self, metadata: MetaData):
        self.tables: list[Table] = list(metadata.sorted_tables)
        self.children: dict[str, list[Edge]] = defaultdict(list)  # owner -> owned tables
        self.owners: dict[str, list[Edge]] = defaultdict(list)  # owned table -> owners
        self.references: list[Edge] = []
        for table in self.tables:
            for fkc in table.foreign_key_constraints:
                if len(fkc.elements) != 1:
                    raise RuntimeError(f"{table.name}: composite foreign keys are refused by the cleanup graph (it deletes through single-column keys only)")
                element = fkc.elements[0]
                parent = element.column.table
                edge = Edge(table, element.parent.name, parent, element.column.name)
                action = (fkc.ondelete or "NO ACTION").upper()
                if action in REFERENCE_ACTIONS or parent is table:
                    self.references.append(edge)
                else:
                    self.children[parent.name].append(edge)
                    self.owners[table.name].append(edge)
        self.by_name = {t.name: t for t in self.tables}
        self.user_owned = self._reachable(USERS)

    def _reachable(self, root: str) -> set[str]:
        seen, pending = {root}, [root]
        while pending:
            for edge in self.children[pending.pop()]:
                if edge.child.name not in seen:
                    seen.add(edge.child.name)
                    pending.append(edge.child.name)
        return seen

    def children_first(self, names: set[str] | None = None) -> list[Table]:
        return [t for t in reversed(self.tables) if names is None or t.name in names]

    # -- conditions -------------------------------------------------------------------------

    @staticmethod
    def guard(table: Table, sel=None) -> ColumnElement | None:
        """The row is marked as test data (None: the table has no is_test column)."""
        sel = table if sel is None else sel
        if "is_test" not in sel.c:
            return None
        condition = sel.c.is_test == true()
        if table.name == USERS:
            condition = and_(condition, sel.c.account_type == "test")
        return condition

    def keeps(self, table: Table, sel=None, _path: tuple[str, ...] = ()) -> ColumnElement | None:
        """The row owns, directly or further down, a row not marked as test."""
        sel = table if sel is None else sel
        clauses = []
        for edge in self.children[table.name]:
            if edge.child.name in _path or edge.child is table:
                continue
            child = edge.child.alias()
            below = []
            if "is_test" in child.c:
                below.append(child.c.is_test == false())
            deeper = self.keeps(edge.child, child, _path + (table.name,))
            if deeper is not None:
                below.append(deeper)
            if below:
                clauses.append(exists().where(child.c[edge.child_col] == sel.c[edge.parent_col], or_(*below)))
        return or_(*clauses) if clauses else None

    def deletable(self, table: Table, sel=None) -> ColumnElement | None:
        """Marked as test, and owning nothing that is not."""
        sel = table if sel is None else sel
        parts = [c for c in (self.guard(table, sel), _negate(self.keeps(table, sel))) if c is not None]
        return and_(*parts) if parts else None

    def belongs(self, table: Table, sel, roots: RootFilter, guarded: bool = True,
                _path: tuple[str, ...] = ()) -> ColumnElement:
        """The row hangs, through owning foreign keys, from a user that `roots` selects.

        guarded: every parent on the way must itself be deletable test data.
        """
        if table.name == USERS:
            return roots(sel)
        clauses = []
        for edge in self.owners[table.name]:
            parent = edge.parent
            if parent.name not in self.user_owned or parent.name in _path:
                continue
            alias = parent.alias()
            conditions = [self.belongs(parent, alias, roots, guarded, _path + (table.name,))]
            if guarded:
                conditions.append(self.deletable(parent, alias) if parent.name != USERS else true())
            ids = select(alias.c[edge.parent_col]).where(*[c for c in conditions if c is not None])
            clauses.append(sel.c[edge.child_col].in_(ids))
        return or_(*clauses) if clauses else false()

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def key_columns(sel) -> list:
        """Primary-key columns of a table or of an alias of it."""
        return list(sel.primary_key)

    def references_to(self, names: set[str]) -> list[Edge]:
        return [e for e in self.references if e.parent.name in names]


def _negate(condition: ColumnElement | None) -> ColumnElement | None:
    return None if condition is None else ~condition
