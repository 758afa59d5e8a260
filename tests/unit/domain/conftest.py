from __future__ import annotations

import pytest

from tests.unit.domain.memory import Memory, new_memory


@pytest.fixture
def memory() -> Memory:
    return new_memory()
