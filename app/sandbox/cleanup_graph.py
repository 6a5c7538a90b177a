"""Which rows own which, read from the SQLAlchemy metadata, and the test guard built on it.

Ownership: a foreign key whose ON DELETE is CASCADE, RESTRICT or NO ACTION (the child cannot
outlive its parent) makes the child part of its parent; SET NULL is a reference (the child
outlives the parent and the database clears the link). Self-references are references too:
a test account never drags down the accounts it created. Tables added by later issues are
covered by declaring their foreign keys; nothing here names a domain table.

The guard is in the SQL: `guard_through` requires `is_test = true` on the table itself where
it has the column (with `account_type = 'test'` for users), else on the owning parent. What
a batch deletes is worked out level by level in cleanup_stage.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Integer, MetaData, Table, and_, exists, false, or_, true

REFERENCE_ACTIONS = {"SET NULL", "SET DEFAULT"}
USERS = "users"
# Never deleted, even when they concern test data: the audit trail is append-only (its trigger
# refuses every DELETE) and a record of what test actors did is evidence too.
KEPT_TABLES = frozenset({"audit_log", "role_change_log"})


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
                    _check_owner(edge)
                    self.children[parent.name].append(edge)
                    self.owners[table.name].append(edge)
        self.by_name = {t.name: t for t in self.tables}
        self.user_owned = self.descendants(USERS)

    def descendants(self, root: str) -> set[str]:
        """The table and every table that hangs from it through owning foreign keys."""
        seen, pending = {root}, [root]
        while pending:
            for edge in self.children[pending.pop()]:
                if edge.child.name not in seen:
                    seen.add(edge.child.name)
                    pending.append(edge.child.name)
        return seen

    def children_first(self, names: set[str] | None = None) -> list[Table]:
        return [t for t in reversed(self.tables) if names is None or t.name in names]

    def parents_first(self, names: set[str]) -> list[Table]:
        return [t for t in self.tables if t.name in names]

    def owns_rows(self, table: Table) -> bool:
        return bool(self.children[table.name])

    # -- conditions -------------------------------------------------------------------------

    @staticmethod
    def guard(table: Table, sel=None) -> ColumnElement | None:
        """The row is marked as test data (None: the table has no is_test column)."""
        sel = table if sel is None else sel
        if "is_test" not in sel.c or table.name in KEPT_TABLES:
            return None
        condition = sel.c.is_test == true()
        if table.name == USERS:
            # Staff accounts, test personas included, are people who sign in: never cleaned up.
            condition = and_(condition, sel.c.account_type == "test", sel.c.is_staff == false())
        return condition

    def guard_through(self, table: Table, sel=None) -> ColumnElement | None:
        """The row is test data: marked itself, or, without the column, owned by a marked row."""
        sel = table if sel is None else sel
        own = self.guard(table, sel)
        if own is not None:
            return own
        clauses = []
        for edge in self.owners[table.name]:
            parent = edge.parent.alias()
            above = self.guard_through(edge.parent, parent)
            if above is not None:
                clauses.append(exists().where(parent.c[edge.parent_col] == sel.c[edge.child_col], above))
        return or_(*clauses) if clauses else None

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def key_columns(sel) -> list:
        """Primary-key columns of a table or of an alias of it."""
        return list(sel.primary_key)

    def references_to(self, names: set[str]) -> list[Edge]:
        return [e for e in self.references if e.parent.name in names]


def _check_owner(edge: Edge) -> None:
    """A table that owns rows is staged by its id (cleanup_stage): one integer primary key."""
    keys = list(edge.parent.primary_key)
    if len(keys) != 1 or not isinstance(keys[0].type, Integer) or keys[0].name != edge.parent_col:
        raise RuntimeError(f"{edge.child.name}.{edge.child_col}: a table that owns rows ({edge.parent.name}) needs a "
                           "single integer primary key that its owned rows reference (the cleanup stages rows by id)")
