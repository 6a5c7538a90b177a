"""DESIGN.md §3, issue 19: a seat and its event are in the license's world by the one rule
(testmode.is_test_row): a test customer's license gets test rows whoever activates it, a live
one live rows, and in test mode a live license takes no seat at all."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core import testmode
from app.core.testmode import TestModeViolation
from app.licensing import activations
from app.licensing.models import Activation, ActivationEvent
from tests.licensing.conftest import fp


@pytest.mark.parametrize("test_mode", [False, True], ids=["live mode", "test mode"])
@pytest.mark.parametrize("test_owner", [False, True], ids=["live owner", "test owner"])
def test_a_seat_and_its_event_are_in_the_licenses_world(session, versions, customer, make_license, test_mode,
                                                         test_owner):
    lic = make_license(customer(test=test_owner))
    with testmode.test_mode(test_mode):
        if test_mode and not test_owner:
            with pytest.raises(TestModeViolation):
                activations.activate(session, lic, fp("desk"))
            session.rollback()
            assert session.scalar(select(Activation.id).where(Activation.license_id == lic.id)) is None
            return
        seat = activations.activate(session, lic, fp("desk")).activation
        session.flush()
    event = session.scalars(select(ActivationEvent).where(ActivationEvent.license_id == lic.id)).one()
    assert (seat.is_test, event.is_test) == (test_owner, test_owner)
