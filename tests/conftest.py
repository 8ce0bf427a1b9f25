"""Fixtures shared by the whole test suite."""
import logging

import pytest


@pytest.fixture(autouse=True)
def _fastreid_logs_reach_caplog():
    """``setup_logger`` stops propagation of the 'fastreid' logger; undo that so every test's caplog sees logs."""
    root = logging.getLogger("fastreid")
    before = root.propagate
    root.propagate = True
    yield
    root.propagate = before
