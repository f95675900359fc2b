"""Numbers kept in a rollup as packed arrays instead of JSON lists.

A year of the agents' figures at issue 19's scale is about 940,000 first-response times and
600,000 conversation ids: as JSON numbers, decoding them cost more than the page's whole
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

# The dtypes, fixed and little-endian, so a row reads the same on any machine.
SECONDS = np.dtype("<i4")  # whole seconds to a first answer (signed: a clock set back)
IDS = np.dtype("<i8")  # conversation ids (bigint)
FLOATS = np.dtype("<f8")  # resolution seconds, as the database computes them


def pack(values: Iterable, dtype: np.dtype) -> str:
    return base64.b64encode(np.fromiter(values, dtype=dtype).tobytes()).decode("ascii")


def packed_lists(per_key: dict, dtype: np.dtype) -> dict[str, list[str]]:
    """{key: [numbers]} -> a rollup value {str(key): [packed]}."""
    return {str(key): [pack(values, dtype)] for key, values in per_key.items()}


def unpacked(values_by_day: Iterable[dict], dtype: np.dtype) -> dict[int, np.ndarray]:
    """Rollup values of many days -> {int key: every number of those days, one array}."""
    parts: dict[int, list[bytes]] = {}
    for per_key in values_by_day:
        for key, packed in per_key.items():
            parts.setdefault(int(key), []).extend(base64.b64decode(p) for p in packed)
    return {key: np.frombuffer(b"".join(chunks), dtype=dtype) for key, chunks in parts.items()}
