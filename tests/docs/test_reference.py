"""The generated reference pages match the code they are generated from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.conftest import ROOT, load_gen


def test_generated_pages_are_up_to_date() -> None:
    gen = load_gen()
    assert gen.stale() == [], "run `python docs/gen.py` to regenerate the reference pages"


def test_configuration_page_names_every_setting_and_redis_variable() -> None:
    gen = load_gen()
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", text, re.M))
    assert documented == gen.setting_env_vars()
    assert "STATEFLEET_DATABASE_URL" in documented and "REDIS_ADDR" in documented


def test_cli_page_has_a_section_for_every_command_and_option() -> None:
    gen = load_gen()
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    commands = gen.cli_commands()
    assert {"batch start", "worker", "leader", "ui", "db upgrade", "dlq retry"} <= set(commands)
    for path, command in commands.items():
        assert f"## `statefleet {path}`" in text, f"docs/cli.md has no section for {path}"
        section = text.split(f"## `statefleet {path}`", 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert f"`{opt}`" in section, f"docs/cli.md: {path} lacks {opt}"


def test_stale_names_each_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = load_gen()
    monkeypatch.setattr(gen, "DOCS", tmp_path)
    (tmp_path / "cli.md").write_text("stale\n", encoding="utf-8")
    assert gen.stale() == ["docs/configuration.md", "docs/cli.md"]
