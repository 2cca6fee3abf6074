"""The examples' tests use the docs suite's stand-ins for the services the READMEs show."""

from tests.docs.conftest import services

__all__ = ["services"]
