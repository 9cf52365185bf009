"""The test run's type checks (jaxtyping with beartype, ``pyproject.toml``), switched off
where a test is about what users see without them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import jaxtyping


@contextmanager
def without_type_checks() -> Iterator[None]:
    """The test run's jaxtyping/beartype checks off, as in production: steerlens's own
    errors are what users see (beartype checks one random item of a list, so a test of
    steerlens's message about a list item must not depend on its draw)."""
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", False)
