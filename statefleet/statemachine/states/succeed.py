"""Succeed: ends the machine (or branch, or iteration) successfully."""

from __future__ import annotations

from statefleet.statemachine.states.base import State


class SucceedState(State):
    type_name = "Succeed"
    takes_parameters = False
    takes_result = False
