"""Numbers kept in a rollup as packed arrays instead of JSON lists.

A year of the agents' figures at issue 19's scale is about 940,000 first-response times and
530,000 conversation ids: as JSON numbers, decoding them cost more than the page's whole
budget (133 ms and 91 ms, then 115 ms to sort for the medians). Packed, a day's values for one
agent are one base64 string of a little-endian array: the page joins a year of them and hands
them to numpy, which reads them without a Python object per number and finds a median without
sorting (numpy.median partitions).

A rollup value is {agent id: [packed, ...]}: a list, so two numbers' values for one day merge
by joining lists (insights.selectors.common._join_lists), as before.
"""

import base64
from collections.abc import Iterable

import numpy as np

# The dtypes, fixed and little-endian, so a row reads the same on any machine: each kind a
# pair, the narrow one used while every value of a day fits, the wide one (marked WIDE) else.
SECONDS = (np.dtype("<i4"),) * 2  # whole seconds to a first answer (signed: a clock set back)
FLOATS = (np.dtype("<f8"),) * 2  # resolution seconds, as the database computes them
# Conversation ids: 4 bytes while they fit (they are bigints, but a desk reaches 4 billion
# conversations never), 8 for a day that holds a larger one. Half the bytes to read and
# decode for the agents section (bench/pages.py).
IDS = (np.dtype("<u4"), np.dtype("<i8"))
WIDE = "8:"

Dtypes = tuple[np.dtype, ...]


def pack(values: Iterable, dtype: Dtypes) -> str:
    narrow, wide = dtype
    array = np.fromiter(values, dtype=wide)
    if narrow == wide:
        return _b64(array)
    if array.size and (array.min() < 0 or array.max() > np.iinfo(narrow).max):
        return WIDE + _b64(array)
    return _b64(array.astype(narrow))


def packed_lists(per_key: dict, dtype: Dtypes) -> dict[str, list[str]]:
    """{key: [numbers]} -> a rollup value {str(key): [packed]}."""
    return {str(key): [pack(values, dtype)] for key, values in per_key.items()}


def unpacked(values_by_day: Iterable[dict], dtype: Dtypes) -> dict[int, np.ndarray]:
    """Rollup values of many days -> {int key: every number of those days, one array}."""
    narrow, wide = dtype
    parts: dict[int, tuple[list[bytes], list[bytes]]] = {}
    for per_key in values_by_day:
        for key, packed in per_key.items():
            chunks = parts.setdefault(int(key), ([], []))
            for p in packed:
                if p.startswith(WIDE):
                    chunks[1].append(base64.b64decode(p[len(WIDE) :]))
                else:
                    chunks[0].append(base64.b64decode(p))
    return {key: _joined(chunks, narrow, wide) for key, chunks in parts.items()}


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(array.tobytes()).decode("ascii")


def _joined(chunks: tuple[list[bytes], list[bytes]], narrow, wide) -> np.ndarray:
    array = np.frombuffer(b"".join(chunks[0]), dtype=narrow)
    if not chunks[1]:
        return array
    return np.concatenate([array.astype(wide), np.frombuffer(b"".join(chunks[1]), dtype=wide)])
