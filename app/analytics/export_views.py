"""CSV export of the dashboard's figures (analytics.export_data): the cards the viewer may see,
flattened to card, figure, day, value, streamed. On the analytics blueprint (app/analytics/views.py)."""
from __future__ import annotations

from flask_login import current_user

from app.analytics import service
from app.analytics.views import bp
from app.auth.guards import permission_required, user_can
from app.core import audit
from app.core.web import csv_response, include_test_data
from app.extensions import db


def flatten(board) -> list[list]:
    """One row per scalar figure, and one per day of a daily series."""
    rows = []
    for card in board.cards:
        for name, value in (board.figures.get(card.name) or {}).items():
            if isinstance(value, (list, tuple)):
                for item in value:
                    if isinstance(item, dict):
                        day = item.get("date") or item.get("day") or item.get("model") or ""
                        for key, v in item.items():
                            if key not in ("date", "day", "model"):
                                rows.append([card.name, f"{name}.{key}", day, v])
            elif not isinstance(value, dict):
                rows.append([card.name, name, "", value])
    return rows


@bp.get("/admin/analytics/export.csv")
@permission_required("analytics.view_dashboard", "analytics.export_data")
def export():
    board = service.dashboard(db.session, user_can, include_test=include_test_data())
    audit.record(db.session, "analytics.exported", actor=current_user, target_type="dashboard",
                 after={"cards": [c.name for c in board.cards], "include_test": board.include_test}, is_test=False)
    db.session.commit()
    return csv_response(f"dashboard-{board.today.isoformat()}.csv", ["card", "figure", "day_or_item", "value"],
                        flatten(board))
