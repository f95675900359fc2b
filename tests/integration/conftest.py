"""The send pipeline, campaigns and scale-out through real daphne and dramatiq processes."""

import pytest

from tests.conftest import mark_folder


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Every test here starts real processes."""
    mark_folder(items, __file__, pytest.mark.integration)
