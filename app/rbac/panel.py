"""The "access" panel of a user's page: roles, overrides, effective permissions and the forms.

Built in one place for the users screen (full page) and the RBAC form handlers (the
fragment they swap in), so both render the same block from the same context.
"""
from __future__ import annotations

from app.auth.guards import sudo_active
from app.core import clock
from app.rbac import service
from app.rbac.catalogue import CATEGORIES, category_of
from app.rbac.forms import AssignRoleForm, ChangeRoleForm, OverrideForm, ReasonForm, SelectChoice
from app.users import service as users


def status_of(item, now) -> tuple[str, str]:
    """(label, badge class) of an assignment or override at `now`."""
    if item.in_force(now):
        return ("active", "badge-ok")
    if item.expires_at is not None and item.expires_at <= now and (
            item.is_active or (item.ended_at is not None and item.ended_at >= item.expires_at)):
        return ("expired", "badge-warn")
    return ("ended", "badge-bad")


def _fresh(form_class, prefix: str):
    return form_class(formdata=None, prefix=prefix)


def access_context(session, actor, target, *, assign_form=None, override_form=None, row_form=None,
                   notice: str | None = None) -> dict:
    """Everything the access block needs; `row_form` is (prefix, form) of a failed row action."""
    now = clock.now()
    blocker = service.management_blocker(session, actor, target)
    role_choices = [SelectChoice(r.id, r.display_name)
                    for r in service.assignable_roles(session, actor)]
    held = service.effective_permissions(session, actor.id)
    perm_choices = [SelectChoice(p, p, optgroup=cat) for cat, perms in CATEGORIES.items() for p in perms if p in held]

    assign_form = assign_form or _fresh(AssignRoleForm, "assign")
    assign_form.role_id.choices = role_choices
    override_form = override_form or _fresh(OverrideForm, "override")
    override_form.permission.choices = perm_choices

    assignments = service.assignments_for(session, target.id)
    overrides = service.overrides_for(session, target.id)
    forms: dict[str, object] = {}
    for a in assignments:
        if a.in_force(now):
            forms[f"change{a.id}"] = _fresh(ChangeRoleForm, f"change{a.id}")
            forms[f"change{a.id}"].role_id.choices = [c for c in role_choices if c.value != a.role_id]
            forms[f"revoke{a.id}"] = _fresh(ReasonForm, f"revoke{a.id}")
    for o in overrides:
        if o.in_force(now):
            forms[f"remove{o.id}"] = _fresh(ReasonForm, f"remove{o.id}")
    panel_errors: list[str] = []
    if row_form is not None:
        prefix, form = row_form
        if prefix in forms:
            if hasattr(form, "role_id"):
                form.role_id.choices = forms[prefix].role_id.choices
            forms[prefix] = form
        else:  # a tampered or stale row id: nothing to attach the message to
            panel_errors.extend(form.form_errors)
            panel_errors.extend(e for key, errs in form.errors.items() if key is not None for e in errs)

    sources = service.permission_sources(session, target.id)
    grouped: dict[str, list[tuple[str, list[str]]]] = {}
    for perm, why in sources.items():
        grouped.setdefault(category_of(perm), []).append((perm, why))
    people = users.emails_for(session, [a.assigned_by_id for a in assignments]
                              + [o.granted_by_id for o in overrides] + [target.created_by_id])
    return {
        "target": target, "now": now, "blocker": blocker, "notice": notice, "panel_errors": panel_errors,
        "assignments": [(a, status_of(a, now)) for a in assignments],
        "overrides": [(o, status_of(o, now)) for o in overrides],
        "assign_form": assign_form, "override_form": override_form, "row_forms": forms,
        "effective": {cat: grouped[cat] for cat in CATEGORIES if cat in grouped},
        "effective_count": len(sources), "people": people, "sudo": sudo_active(),
    }
