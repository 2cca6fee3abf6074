"""Docs do not rot: every test a doc page cites exists."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_asl_support_matrix_cites_real_tests() -> None:
    text = (ROOT / "docs" / "asl-support.md").read_text(encoding="utf-8")
    cited = re.findall(r"`(test_[a-z_]+\.py)(?:::([a-z0-9_*]+))?`", text)
    assert len(cited) > 20
    for filename, test in cited:
        path = ROOT / "tests" / "statemachine" / filename
        assert path.is_file(), f"docs/asl-support.md cites a missing file {filename}"
        if test:
            names = re.findall(r"^(?:async )?def (test_[a-z0-9_]+)", path.read_text(), re.M)
            assert fnmatch.filter(names, test), f"{filename}::{test} does not exist"
    # `::test_x` right after a file cites a test of that same file
    followers = r"`(test_[a-z_]+\.py)::[a-z0-9_*]+`((?:, `::[a-z0-9_*]+`)+)"
    for filename, tests in re.findall(followers, text):
        path = ROOT / "tests" / "statemachine" / filename
        names = re.findall(r"^(?:async )?def (test_[a-z0-9_]+)", path.read_text(), re.M)
        for test in re.findall(r"`::([a-z0-9_*]+)`", tests):
            assert fnmatch.filter(names, test), f"{filename}::{test} does not exist"


def test_guarantees_cite_real_tests() -> None:
    """docs/guarantees.md links each promise to a test: the file and the test exist."""
    text = (ROOT / "docs" / "guarantees.md").read_text(encoding="utf-8")
    files = re.findall(r"\]\(\.\./(tests/[\w/]+\.py)\)", text)
    assert files, "docs/guarantees.md links no test file"
    for path in files:
        assert (ROOT / path).is_file(), f"docs/guarantees.md links a missing file {path}"
    cited = re.findall(
        r"\[`(?:(tests/[\w/]+\.py)::)?(test_\w+)`\]\(\.\./(tests/[\w/]+\.py)\)", text
    )
    assert len(cited) >= 20
    for named, test, path in cited:
        assert not named or named == path, f"{named}::{test} links {path}"
        names = re.findall(r"^(?:async )?def (test_\w+)", (ROOT / path).read_text(), re.M)
        assert test in names, f"docs/guarantees.md cites {path}::{test}, which does not exist"
