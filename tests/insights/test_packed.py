"""The agents' rollups' packed arrays give back every number they were given."""

import base64

from insights.selectors.packed import FLOATS, IDS, SECONDS, WIDE, packed_lists, unpacked


def test_they_give_back_every_number_of_every_day():
    days = [
        packed_lists({7: [30, 5], 8: [0]}, SECONDS),
        packed_lists({7: [-1, 2**31 - 1]}, SECONDS),
    ]
    found = unpacked(days, SECONDS)
    assert found[7].tolist() == [30, 5, -1, 2**31 - 1] and found[8].tolist() == [0]
    assert unpacked([packed_lists({3: [0.25, 1e9]}, FLOATS)], FLOATS)[3].tolist() == [0.25, 1e9]


def test_conversation_ids_take_4_bytes_until_one_does_not_fit():
    small = packed_lists({7: [1, 2**32 - 1]}, IDS)
    large = packed_lists({7: [2**32, 5], 9: [2**40]}, IDS)
    assert not small["7"][0].startswith(WIDE) and large["7"][0].startswith(WIDE)
    assert len(base64.b64decode(small["7"][0])) == 8  # two ids, 4 bytes each
    found = unpacked([small, large], IDS)
    assert sorted(found[7].tolist()) == [1, 5, 2**32 - 1, 2**32]
    assert found[9].tolist() == [2**40]
    assert unpacked([small], IDS)[7].tolist() == [1, 2**32 - 1]


def test_nothing_packs_to_nothing():
    assert unpacked([packed_lists({7: []}, IDS)], IDS)[7].size == 0
    assert unpacked([], SECONDS) == {}
