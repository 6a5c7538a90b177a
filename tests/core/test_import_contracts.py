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


def test_the_contracts_cover_core_the_domain_layers_and_the_sandbox():
    by_id = {c["id"]: c for c in _contracts()}
    assert set(by_id) >= {"plumbing", "domains", "sandbox"}
    assert by_id["plumbing"]["layers"][-2:] == ["app.core", "app.extensions"]
    domains = by_id["domains"]["layers"]
    assert domains[-1] == "app.users" and "app.sandbox" in domains
    # every domain package is placed in a layer (a new one must be placed too)
    packages = {p.name for p in (ROOT / "app").iterdir() if (p / "__init__.py").exists()} - {"core"}
    placed = {name.strip().removeprefix("app.") for layer in domains for name in layer.replace(":", "|").split("|")}
    assert packages <= placed, f"not in the domain layers: {sorted(packages - placed)}"
    assert by_id["sandbox"]["forbidden_modules"] == ["app.sandbox"]


def test_lint_imports_keeps_every_contract():
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's app, not another checkout's
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"import contracts broken:\n{report}"
    kept = f"Contracts: {len(_contracts())} kept, 0 broken."
    assert kept in report, f"expected {kept!r}:\n{report}"
