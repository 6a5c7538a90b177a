"""Issue 19, DESIGN.md §3: a created row's is_test is set in one place from the actor:
testmode.is_test_row(owner) (or the ORM listener of core/models.py, which asks the same rule).
No code copies a parent's flag by hand (`is_test=parent.is_test`): the copy forgets the actor's
test mode, and a second way to decide the world is how the two worlds drift apart."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (path, callee) where `is_test=<x>.is_test` is not a row being created, and why.
NOT_A_NEW_ROW = {
    ("app/licensing/validation.py", "LicenseState"): "the validation answer reads an existing license's flag",
}


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "?")


def _copies_a_flag(value: ast.expr) -> bool:
    """`x.is_test` or `bool(x.is_test)`."""
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "bool" and len(value.args) == 1:
        value = value.args[0]
    return isinstance(value, ast.Attribute) and value.attr == "is_test"


def hand_copies(source: str, relative: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or (relative, _callee(node)) in NOT_A_NEW_ROW:
            continue
        for keyword in node.keywords:
            if keyword.arg == "is_test" and _copies_a_flag(keyword.value):
                found.append(f"{relative}:{keyword.value.lineno} {_callee(node)}(is_test={ast.unparse(keyword.value)})")
    return found


def test_no_code_copies_a_parents_is_test_by_hand():
    found = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        found += hand_copies(path.read_text(), relative)
    assert found == [], "use testmode.is_test_row(owner):\n" + "\n".join(found)


def test_the_check_finds_a_hand_copy():
    """The walk is not vacuous: both spellings of a copy are caught, the rule and a form's choice are not."""
    source = ("Invoice(user_id=1, is_test=sub.is_test)\n"
              "Payment(is_test=bool(invoice.is_test))\n"
              "Refund(is_test=testmode.is_test_row(payment))\n"
              "Client(is_test=form.is_test.data)\n")
    assert [line.split(" ", 1)[1] for line in hand_copies(source, "app/x.py")] == [
        "Invoice(is_test=sub.is_test)", "Payment(is_test=bool(invoice.is_test))"]
