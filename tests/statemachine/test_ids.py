"""Execution, batch and wait ids: UUID version 7 text that sorts by creation time."""

from __future__ import annotations

import itertools
import os
import time
import uuid

from statefleet.statemachine.protocols import new_id


def test_ids_are_uuid7_text() -> None:
    for _ in range(2000):
        text = new_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical lowercase 8-4-4-4-12
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_ids_carry_the_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    parsed = uuid.UUID(new_id())
    after = time.time_ns() // 1_000_000
    assert before <= parsed.int >> 80 <= after


def test_ids_sort_by_creation_time_and_do_not_repeat() -> None:
    ids = []
    for _ in range(5):
        ids.extend(new_id() for _ in range(1000))
        time.sleep(0.002)  # the next round is in a later millisecond
    assert len(set(ids)) == len(ids)
    rounds = [ids[i : i + 1000] for i in range(0, len(ids), 1000)]
    for earlier, later in itertools.pairwise(rounds):
        assert max(earlier) < min(later)


def test_random_bits_vary_in_every_random_digit() -> None:
    ids = [new_id().replace("-", "") for _ in range(500)]
    for position in [*range(13, 16), *range(17, 32)]:  # after the time and version digits
        assert len({text[position] for text in ids}) > 3, position
    assert {text[16] for text in ids} == set("89ab")  # the variant digit


def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    new_id()  # the parent holds random digits read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, " ".join(new_id() for _ in range(100)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [new_id() for _ in range(100)]
    assert len(child) == 100
    random_part = {text[15:] for text in parent}  # after the millisecond and version
    assert not random_part & {text[15:] for text in child}
