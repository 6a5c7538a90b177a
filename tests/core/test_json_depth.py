"""bounds.loads_json: at most MAX_JSON_DEPTH deep, whether it walks the value or counts brackets."""
from __future__ import annotations

import pytest

from app.core import bounds

DEPTH = bounds.MAX_JSON_DEPTH


def nested(depth: int) -> str:
    return "[" * (depth - 1) + '{"a": 1}' + "]" * (depth - 1)


@pytest.mark.parametrize("kind", [str, bytes])
def test_the_depth_bound_holds_with_few_brackets_and_with_many(kind):
    as_kind = (lambda text: text.encode()) if kind is bytes else (lambda text: text)
    assert bounds.loads_json(as_kind(nested(DEPTH)))  # exactly the bound: accepted
    with pytest.raises(ValueError):
        bounds.loads_json(as_kind(nested(DEPTH + 1)))
    many_in_text = '{"note": "' + "[{" * DEPTH + '", "n": [1, [2]]}'  # brackets in a string: shallow
    assert bounds.loads_json(as_kind(many_in_text))["n"] == [1, [2]]
    wide = "[" + ", ".join(["[1]"] * (DEPTH * 3)) + "]"  # many brackets, two deep
    assert len(bounds.loads_json(as_kind(wide))) == DEPTH * 3
    with pytest.raises(ValueError):
        bounds.loads_json(as_kind("[" * 100_000 + "]" * 100_000))  # the parser's own recursion
