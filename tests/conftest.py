"""Fixtures and settings shared by the whole test suite."""
import logging
import os

import pytest
import torch

# Tests use tiny tensors, for which one thread is as fast as several; it also avoids the severe slow-down of
# spinning intra-op threads when the machine's few cores are shared with other processes.
torch.set_num_threads(1)

# Tests never download weights (tests/modeling/test_pretrained_download.py serves its own on 127.0.0.1).
os.environ["FASTREID_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def _fastreid_logs_reach_caplog():
    """``setup_logger`` stops propagation of the 'fastreid' logger and sets it to DEBUG; undo both for each test,
    so every test's caplog sees the logs, at the levels it asks for, whatever tests ran before."""
    root = logging.getLogger("fastreid")
    before = root.propagate, root.level
    root.propagate = True
    root.setLevel(logging.NOTSET)
    yield
    root.propagate, _ = before
    root.setLevel(before[1])



def pytest_sessionstart(session):
    """Warn, even with -q, when the temporary folder is short of the space the training and export tests need.

    Their checkpoints are ~130 MB each and the suite peaks at about 1.2 GB; a full disk shows up as failed
    saves in unrelated-looking tests, so say it up front.
    """
    import shutil
    import tempfile

    folder = tempfile.gettempdir()
    free_gb = shutil.disk_usage(folder).free / 2**30
    if free_gb < 2:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (f"fastreid tests: only {free_gb:.1f} GB free in {folder}; training and export tests need up to "
                   "~1.5 GB at once. Free some space or point TMPDIR at a larger disk.")
        if reporter is not None:
            reporter.write_line(message, yellow=True, bold=True)
