"""The ASL engine: definitions, states, data flow and the in-memory interpreter.

This package imports neither SQLAlchemy, redis, arq, starlette nor typer; the
persistent and distributed layers plug in through small protocols.
"""

from statefleet.statemachine.machine import RunResult, StateMachine

__all__ = ["RunResult", "StateMachine"]
