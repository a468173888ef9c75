"""The end-to-end tests' stack of their own, to break (``tests.e2e.stack``)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, stack_of


@pytest.fixture
def stack(tmp_path: Path, datasets_dir: Path) -> Iterator[Stack]:
    """A Redis with AOF, an API and (once started) workers of this test's own."""
    with stack_of(tmp_path, datasets_dir) as made:
        yield made
