"""The README's tour names only commands and options that exist (tests/docs/test_pages.py
runs it)."""

from __future__ import annotations

import re
from typing import Any

import typer.main

from statefleet.cli import app
from tests.cli.conftest import ROOT

WORD = re.compile(r"[a-z][a-z-]*")


def _usages() -> list[str]:
    """Each command of the tour's sh block(s), continuation lines joined."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## A tour", 1)[1].split("\n## ", 1)[0]
    usages: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("statefleet "):
                usages.append(line.rstrip(" &"))
    return usages


def _resolve(command: Any, words: list[str]) -> Any:
    for word in words:
        children = getattr(command, "commands", {})
        assert word in children, f"no command {word!r} under {command.name!r}"
        command = children[word]
    return command


def _path(words: list[str]) -> list[str]:
    """The command path: the words before the first argument or option."""
    path: list[str] = []
    for word in words:
        if not WORD.fullmatch(word):
            break
        path.append(word)
    return path


def test_every_command_and_option_of_the_tour_exists() -> None:
    root = typer.main.get_command(app)
    checked = 0
    for usage in _usages():
        command = _resolve(root, _path(usage.split()[1:]))
        options = {opt for param in command.params for opt in getattr(param, "opts", ())}
        for option in re.findall(r"--[a-z][a-z-]*", usage):
            assert option in options, f"{usage!r}: {command.name} has no {option}"
        checked += 1
    assert checked >= 10
