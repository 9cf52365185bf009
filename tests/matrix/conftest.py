"""The matrix runs hundreds of tiny forward passes: one intra-op thread each is several
times faster than a pool contending for a shared CPU (restored after the package)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="package", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
