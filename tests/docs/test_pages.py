"""The docs' commands work as written: the ```sh blocks of each page run (tests/docs/shell.py),
every page with commands is run by some test, and every relative link resolves."""

from __future__ import annotations

import ast
import asyncio
import importlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from statefleet import DefinitionError, ExecutionFilter, StateMachine, open_store
from tests.docs.conftest import free_port, load_gen
from tests.docs.shell import (
    DOC_DATABASE_URL,
    FENCE,
    ROOT,
    SETUP_COMMANDS,
    blocks,
    commands,
    run_page,
)

pytestmark = pytest.mark.timeout(300)

#: Every page whose ```sh blocks a test runs (this module or tests/examples/).
RUN_BY_TESTS = {
    "README.md",
    "docs/getting-started.md",
    "docs/batches.md",
    "examples/hello/README.md",
    "examples/order_processing/README.md",
    "examples/chained_batch/README.md",
    "examples/distributed_queue/README.md",
    "examples/crash_recovery/README.md",
}

#: Pages other branches add (reliability: guarantees; task tokens: callbacks): links to
#: them are expected to dangle until those land.


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found += [*sorted(ROOT.glob("examples/*/README.md")), ROOT / "docker-examples/README.md"]
    return found


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_every_page_with_commands_is_run_by_a_test() -> None:
    with_commands = {relative(p) for p in pages() if any(commands(b) for b in blocks(p, "sh"))}
    assert with_commands == RUN_BY_TESTS


def test_set_up_blocks_hold_only_set_up_commands() -> None:
    for page in pages():
        for block in blocks(page, "shell"):
            for command in commands(block):
                assert command.startswith(SETUP_COMMANDS), (
                    f"{relative(page)}: `{command}` is in a ```shell block (not run by the "
                    "tests); put it in a ```sh block"
                )


def test_relative_links_resolve() -> None:
    checked = 0
    for page in pages():
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.exists(), f"{relative(page)} links to a missing {target}"
            checked += 1
    assert checked > 40


async def statuses(url: str, machine_id: str) -> Counter[str]:
    store = await open_store(url, create=False)
    try:
        records = await store.list_executions(ExecutionFilter(state_machine_id=machine_id))
        return Counter(r.status for r in records)
    finally:
        await store.close()


def test_getting_started(tmp_path: Path, services: dict[str, str]) -> None:
    port = str(free_port())
    ran = run_page(
        ROOT / "docs" / "getting-started.md",
        tmp_path,
        substitutions={
            **services,
            "statefleet demo": "statefleet demo --size 200",
            "inputs 5000": "inputs 300",
            "8080": port,
        },
        env={"TASK_DELAY": "0.005"},
    )
    assert ran.returncode == 0, ran.explain()
    # part 1, embedded: the demo's and the orders' executions are in ./statefleet.db
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'statefleet.db'}"
    assert sum(asyncio.run(statuses(sqlite, "demo-intake")).values()) == 200
    assert asyncio.run(statuses(sqlite, "orders")) == {"SUCCEEDED": 3, "FAILED": 2}
    # part 2, distributed: the workers ran the batch, and the UI's API shows it
    assert asyncio.run(statuses(services[DOC_DATABASE_URL], "fleet-orders")) == {"SUCCEEDED": 300}
    listing = json.loads(ran.stdout[ran.stdout.rindex("\n[") :].split("\n", 2)[1])
    batches = listing if isinstance(listing, list) else listing["batches"]
    assert [b["name"] for b in batches] == ["first-batch"]


def test_batch_guide(tmp_path: Path) -> None:
    ran = run_page(ROOT / "docs" / "batches.md", tmp_path)
    assert ran.returncode == 0, ran.explain()
    assert "the batch stopped, FAILED (exit status 1)" in ran.stdout
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'statefleet.db'}"
    assert asyncio.run(statuses(sqlite, "fulfilment")) == {"SUCCEEDED": 980}


def test_every_statefleet_command_shown_exists_with_its_options() -> None:
    """Any code block of any page: a line ``statefleet WORDS --options`` names a command
    of the CLI and only options that command has."""
    gen = load_gen()
    known = gen.cli_commands()
    checked = 0
    for page in pages():
        if page.name == "cli.md":  # generated from the CLI itself
            continue
        text = page.read_text(encoding="utf-8")
        for _language, body in FENCE.findall(text):
            for command in commands(body):
                for part in re.split(r"&&|\|\||;|\|", command):
                    words = part.strip().split()
                    if len(words) < 2 or words[0] != "statefleet" or "|" in words[1]:
                        continue
                    path: list[str] = []
                    for word in words[1:]:
                        if " ".join([*path, word]) in known:
                            path.append(word)
                        else:
                            break
                    where = f"{relative(page)}: `{part.strip()}`"
                    assert path, f"{where}: no such command"
                    found = known[" ".join(path)]
                    options = {o for p in found.params for o in getattr(p, "opts", [])}
                    for word in words:
                        option = word.split("=")[0]
                        if option.startswith("--") and option not in ("--help",):
                            assert option in options, f"{where}: no option {option}"
                    checked += 1
    assert checked > 50


def test_state_machines_shown_are_valid() -> None:
    """Every ```yaml block that is a whole state machine parses and validates, except the
    Go engine's (marked so), which statefleet must reject: the migration guide's steps
    are needed."""
    valid = 0
    for page in pages():
        for block in blocks(page, "yaml"):
            if "StartAt:" not in block:
                continue
            if block.startswith("# the Go engine's"):
                with pytest.raises(DefinitionError, match="Name"):
                    StateMachine.from_definition(block)
                continue
            StateMachine.from_definition(block)
            valid += 1
    assert valid >= 1


def test_readme_tour(tmp_path: Path, services: dict[str, str]) -> None:
    port = str(free_port())
    ran = run_page(
        ROOT / "README.md",
        tmp_path,
        substitutions={
            **services,
            "statefleet demo": "statefleet demo --size 200",
            "--size 10000": "--size 300",
            "8080": port,
        },
        env={"TASK_DELAY": "0.005"},
    )
    assert ran.returncode == 0, ran.explain()
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'statefleet.db'}"
    assert asyncio.run(statuses(sqlite, "orders")) == {"SUCCEEDED": 4, "FAILED": 2}
    assert asyncio.run(statuses(sqlite, "fulfilment")) == {"SUCCEEDED": 294}
    assert asyncio.run(statuses(services[DOC_DATABASE_URL], "fleet-orders")) == {"SUCCEEDED": 1000}


def test_python_snippets_compile_and_import_only_what_exists() -> None:
    """Every ```python block of the docs compiles (top-level ``await`` allowed: they are
    fragments of async code) and names only what its imports provide."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    checked = 0
    for page in pages():
        for block in blocks(page, "python"):
            compile(block, str(page), "exec", flags=flags)
            for node in ast.walk(ast.parse(block)):
                if isinstance(node, ast.ImportFrom) and node.module:
                    module = importlib.import_module(node.module)
                    for alias in node.names:
                        assert hasattr(module, alias.name), (
                            f"{relative(page)}: {node.module} has no {alias.name}"
                        )
            checked += 1
    assert checked >= 5
