"""A scoped session like Flask-SQLAlchemy's db.session, with other options (a test's own
connection, or the app's engine again), built from public parts: Flask-SQLAlchemy's
db._make_scoped_session() is marked private ("its signature may change at any time")."""
from __future__ import annotations

from flask import g
from flask_sqlalchemy.session import Session
from sqlalchemy.orm import scoped_session, sessionmaker


def _app_context_id() -> int:
    """One session per app context, as db.session has (each app context has its own `g`)."""
    return id(g._get_current_object())


def app_scoped_session(db, **options) -> scoped_session:
    """`options` go to the Session, e.g. bind=connection, class_=BoundSession."""
    factory = sessionmaker(db=db, query_cls=db.Query, **{"class_": Session, **options})
    return scoped_session(factory, scopefunc=_app_context_id)
