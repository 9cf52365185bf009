"""The matrix runs hundreds of tiny forward passes: one intra-op thread each is several
times faster than a pool contending for a shared CPU (``one_thread``, per module)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _matrix_on_one_thread(one_thread):
    """Every matrix test module runs on one thread."""
