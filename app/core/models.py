"""Model base (typed, with a naming convention) and the mixins every table shares."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, MetaData, Numeric, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, registry
from sqlalchemy.types import TypeDecorator

from app.core import clock, testmode

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT ids on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, on PostgreSQL and SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = clock.as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return clock.as_utc(value)


def Money(**kw):
    """NUMERIC(10,2) money column."""
    return mapped_column(Numeric(10, 2, asdecimal=True), **kw)


class Base(DeclarativeBase):
    # Set on the registry: Flask-SQLAlchemy subclasses this base, and SQLAlchemy refuses a
    # per-class type_annotation_map next to a registry.
    registry = registry(
        metadata=MetaData(naming_convention=NAMING),
        type_annotation_map={datetime: UTCDateTime(), Decimal: Numeric(10, 2), bool: Boolean()},
    )


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=clock.now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now, nullable=False)


class IsTestMixin:
    """Every row a person or a request creates knows whether it is test data."""

    is_test: Mapped[bool] = mapped_column(default=False, nullable=False, index=True)


@event.listens_for(Session, "before_flush")
def _mark_test_rows(session: Session, flush_context, instances) -> None:
    """Set is_test from the actor at write time, so no domain code has to remember."""
    if not testmode.active():
        return  # is_test_row() would keep every flag as it is
    for obj in session.new:
        if isinstance(obj, IsTestMixin):
            obj.is_test = testmode.is_test_row(obj.is_test)
