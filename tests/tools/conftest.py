import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "predictor"))

from tiny_reid import cfg, model, one_thread, setup_files  # noqa: E402,F401  (fixtures)
