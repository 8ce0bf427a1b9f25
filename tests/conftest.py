"""Fixtures and settings shared by the whole test suite."""
import logging

import pytest
import torch

# Tests use tiny tensors, for which one thread is as fast as several; it also avoids the severe slow-down of
# spinning intra-op threads when the machine's few cores are shared with other processes.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fastreid_logs_reach_caplog():
    """``setup_logger`` stops propagation of the 'fastreid' logger; undo that so every test's caplog sees logs."""
    root = logging.getLogger("fastreid")
    before = root.propagate
    root.propagate = True
    yield
    root.propagate = before
