"""Helpers of the docs suite: the reference generator (docs/gen.py) loaded as a module."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_gen() -> ModuleType:
    """docs/gen.py (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("statefleet_docs_gen", ROOT / "docs" / "gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
