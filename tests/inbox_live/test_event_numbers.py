"""inbox/events.py numbers what it sends to the inbox group, so a socket can tell it missed one."""

import os

from inbox import events


def test_each_inbox_copy_gets_the_next_number_of_its_process():
    sequence = events._Sequence()
    first, second = sequence.stamp({"type": "a"}), sequence.stamp({"type": "b"})
    assert first["source"] == second["source"] and first["source"]
    assert second["seq"] == first["seq"] + 1
    assert first["type"] == "a"


def test_a_forked_process_counts_under_a_source_of_its_own(monkeypatch):
    sequence = events._Sequence()
    parent = sequence.stamp({})
    monkeypatch.setattr(os, "getpid", lambda: -1)
    child = sequence.stamp({})
    assert child["source"] != parent["source"] and child["seq"] == 1
