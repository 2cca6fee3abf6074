"""The README's "Command line" section names only commands and options that exist."""

from __future__ import annotations

import re
from typing import Any

import typer.main

from statefleet.cli import app
from tests.cli.conftest import ROOT

WORD = re.compile(r"[a-z][a-z-]*")


def _usages() -> list[str]:
    """Each documented usage, continuation lines joined (after three spaces: a comment)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    usages: list[str] = []
    for block in section.split("```")[1::2]:
        for line in block.splitlines():
            usage = line.strip().split("   ")[0].rstrip("\\ ")
            if line.startswith("statefleet "):
                usages.append(usage)
            elif line.startswith(" ") and usages:
                usages[-1] += " " + usage
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


def test_every_documented_command_and_option_exists() -> None:
    root = typer.main.get_command(app)
    checked = 0
    for usage in _usages():
        first, *alternatives = re.split(r" \| (?=[a-z])", usage)
        path = _path(first.split()[1:])
        targets = [(_resolve(root, path), first)]
        parent = _resolve(root, path[:-1])
        targets += [(_resolve(parent, [alt.split()[0]]), alt) for alt in alternatives]
        for command, text in targets:
            options = {opt for param in command.params for opt in getattr(param, "opts", ())}
            for option in re.findall(r"--[a-z][a-z-]*", text):
                assert option in options, f"{usage!r}: {command.name} has no {option}"
            checked += 1
    assert checked >= 15
