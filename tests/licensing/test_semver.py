"""SemVer precedence per semver.org §11, and the sort key that lets SQL compare versions."""
import random

import pytest

from app.core.errors import DomainError
from app.licensing import semver

# semver.org §11's own example chain, plus release/patch neighbours.
CHAIN = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
         "1.0.0-rc.1", "1.0.0", "1.0.1", "1.9.9", "1.10.0", "2.0.0-0", "2.0.0-1a", "2.0.0-alpha-x",
         "2.0.0-beta.1", "2.0.0", "10.0.0"]


def test_precedence_follows_the_specification_chain():
    parsed = [semver.parse(v) for v in CHAIN]
    for lower, higher in zip(parsed, parsed[1:]):
        assert lower < higher, (str(lower), str(higher))


def test_sort_key_orders_exactly_like_precedence():
    shuffled = CHAIN[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=semver.sort_key) == CHAIN
    assert sorted(shuffled, key=semver.parse) == CHAIN


def test_identifier_prefix_and_dash_cases():
    # "alpha" is a prefix of "alpha-b": shorter identifier first, even against a following field.
    assert semver.parse("1.0.0-alpha.x") < semver.parse("1.0.0-alpha-b")
    assert semver.sort_key("1.0.0-alpha.x") < semver.sort_key("1.0.0-alpha-b")
    assert semver.sort_key("1.0.0-alpha") < semver.sort_key("1.0.0-alpha.0")


def test_build_metadata_is_ignored_for_precedence():
    assert semver.parse("2.0.0+build.7") == semver.parse("2.0.0")
    assert semver.sort_key("2.0.0+build.7") == semver.sort_key("2.0.0")
    assert str(semver.parse("2.0.0+build.7")) == "2.0.0+build.7"


def test_eligibility_edges_around_2_0_0():
    low, high = semver.parse("1.0.0"), semver.parse("2.0.0")
    assert semver.in_range(semver.parse("1.9.9"), low, high)
    assert semver.in_range(semver.parse("1.0.0"), low, high)
    assert not semver.in_range(semver.parse("2.0.0"), low, high)
    # SemVer: a prerelease precedes its release, so the 2.0.0 beta is still below 2.0.0.
    assert semver.in_range(semver.parse("2.0.0-beta.1"), low, high)
    assert not semver.in_range(semver.parse("1.0.0-rc.1"), low, high)


@pytest.mark.parametrize("text", ["", "1", "1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+", " ",
                                  "1.0.0.0", "1.0.0-beta..1", "a.b.c", None, 2, "1.0.0-" + "x" * 70,
                                  "12345678901.0.0"])
def test_not_semver_is_refused_with_a_clear_message(text):
    with pytest.raises(DomainError) as err:
        semver.parse(text, "to")
    assert err.value.code == "invalid_version"
    assert err.value.field == "to"
    assert "semantic version" in err.value.message or "not supported" in err.value.message
