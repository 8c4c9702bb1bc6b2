"""Fixtures shared by the test modules (plain helpers live in ``tests/helpers.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers import SMALL_POOL

from activeuf_env import ActiveUFEnv


@pytest.fixture
def make_small_env() -> Callable[..., ActiveUFEnv]:
    """Factory of small envs: 160 train prompts in 10 rounds of 16, D = 16."""

    def make(**kwargs: Any) -> ActiveUFEnv:
        options: dict[str, Any] = {"instances": SMALL_POOL, "batch_size": 16, "eval_size": 40, **kwargs}
        return ActiveUFEnv(**options)

    return make
