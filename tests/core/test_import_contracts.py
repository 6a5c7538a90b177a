"""Package boundaries (DESIGN.md §2, issue 19): the import-linter contracts in pyproject.toml hold.

core imports no domain and sits on the extensions; the domains stand in layers (no cycle between
them); production code reaches the sandbox only through its doors. A break fails here with
lint-imports' own report, which names each offending import and its line."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _names(layer: str) -> set[str]:
    return {name.strip().removeprefix("app.") for name in layer.replace(":", "|").split("|")}


def test_the_contracts_cover_core_the_domain_layers_and_the_sandbox():
    by_id = {c["id"]: c for c in _contracts()}
    assert set(by_id) >= {"plumbing", "domains", "sandbox"}
    # every package is placed (a new one must be placed too, or it escapes every contract)
    packages = {p.name for p in (ROOT / "app").iterdir() if (p / "__init__.py").exists()} - {"core"}
    plumbing = by_id["plumbing"]["layers"]
    assert plumbing[-2:] == ["app.core", "app.extensions"]
    assert packages <= _names(plumbing[0]), f"not above core: {sorted(packages - _names(plumbing[0]))}"
    domains = by_id["domains"]["layers"]
    placed = set().union(*map(_names, domains))
    assert domains[-1] == "app.users" and packages <= placed, f"not in the domain layers: {sorted(packages - placed)}"
    assert by_id["sandbox"]["forbidden_modules"] == ["app.sandbox"]
    guarded = {m.removeprefix("app.") for m in by_id["sandbox"]["source_modules"]}
    assert packages - {"sandbox"} <= guarded, f"may import the sandbox freely: {sorted(packages - {'sandbox'} - guarded)}"


def test_lint_imports_keeps_every_contract():
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's app, not another checkout's
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"import contracts broken:\n{report}"
    kept = f"Contracts: {len(_contracts())} kept, 0 broken."
    assert kept in report, f"expected {kept!r}:\n{report}"
