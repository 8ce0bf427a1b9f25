"""``require_paths``: the error names the first missing path, then the README pointer or the given layout."""
import pytest

from fastreid.data.datasets import DatasetNotFoundError
from fastreid.data.datasets.bases import README_HINT, require_paths


def test_names_the_first_missing_path_and_points_to_the_readme(tmp_path):
    (tmp_path / "a").mkdir()
    require_paths("Set", str(tmp_path / "a"))
    with pytest.raises(DatasetNotFoundError) as e:
        require_paths("Set", str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c"))
    assert str(e.value) == f"Set: expected '{tmp_path / 'b'}' but it does not exist. {README_HINT}"


def test_a_layout_replaces_the_readme_pointer(tmp_path):
    layout = "Set/\n  list.txt   one image per line"
    with pytest.raises(DatasetNotFoundError) as e:
        require_paths("Set", str(tmp_path / "Set"), layout=layout)
    assert str(e.value) == (f"Set: expected '{tmp_path / 'Set'}' but it does not exist. Expected layout under the "
                            f"datasets root (DATASETS.ROOT):\n{layout}")
