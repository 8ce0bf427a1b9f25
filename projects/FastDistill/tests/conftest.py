"""Make the project's package importable as ``fastdistill``, as running ``train_net.py`` from its folder does."""
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))
