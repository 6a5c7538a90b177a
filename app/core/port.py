"""A slot a lower package declares and create_app fills (app/ports.py) with what a higher one
provides, so the lower package never imports the higher one (pyproject.toml's import contracts)."""
from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Port(Generic[T]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._plugged: T | None = None

    def plug(self, value: T) -> None:
        self._plugged = value

    def __call__(self) -> T:
        if self._plugged is None:
            raise RuntimeError(f"no {self.what} plugged in (create_app calls app/ports.py)")
        return self._plugged
