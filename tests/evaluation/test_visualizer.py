import numpy as np
from PIL import Image

from fastreid.evaluation.visualizer import MATCH_COLOR, MISMATCH_COLOR, ranked_gallery, visualize_ranked_results


def _write_images(tmp_path, names):
    paths = []
    for i, name in enumerate(names):
        p = tmp_path / name
        Image.new("RGB", (16, 32), (i * 20 % 255, 100, 150)).save(p)
        paths.append(str(p))
    return paths


def test_rank_list_borders_follow_matches(tmp_path):
    q_paths = _write_images(tmp_path, ["0001_c1s1_000001_00.jpg", "0002_c1s1_000002_00.jpg"])
    g_paths = _write_images(tmp_path, [f"{p:04d}_c2s1_{i:06d}_00.jpg" for i, p in enumerate([1, 2, 1, 3, 1])])
    q_pids, g_pids = np.array([1, 2]), np.array([1, 2, 1, 3, 1])
    q_cams, g_cams = np.array([0, 0]), np.array([1, 1, 1, 1, 0])  # g4: same pid+camera as q0 -> junk
    dist = np.array([[0.3, 0.1, 0.5, 0.2, 0.0],
                     [0.9, 0.1, 0.2, 0.3, 0.4]])
    border, size = 4, (16, 32)
    out = visualize_ranked_results(dist, q_pids, g_pids, q_cams, g_cams, q_paths, g_paths,
                                   str(tmp_path / "vis"), topk=4, queries="worst", num_queries=2,
                                   image_size=size, border=border)
    assert len(out) == 2 and all(Image.open(p).size[0] > 0 for p in out)
    assert "_q0_" in out[0]  # query 0 has the lower AP
    img = np.asarray(Image.open(out[0]).convert("RGB"))
    tile_w = size[0] + 2 * border
    # query 0 order without junk g4: g1 (pid2), g3 (pid3), g0 (pid1), g2 (pid1)
    expected = [MISMATCH_COLOR, MISMATCH_COLOR, MATCH_COLOR, MATCH_COLOR]
    for i, color in enumerate(expected):
        x = (i + 1) * (tile_w + border) + 1
        assert tuple(img[18 + 1, x]) == color


def test_explicit_indices(tmp_path):
    q_paths = _write_images(tmp_path, ["q.jpg"])
    g_paths = _write_images(tmp_path, ["a.jpg", "b.jpg"])
    out = visualize_ranked_results(np.array([[0.2, 0.1]]), [0], [0, 1], [0], [1, 1], q_paths, g_paths,
                                   str(tmp_path / "v"), topk=2, queries=[0])
    assert len(out) == 1


def test_ranked_gallery_order_ties_and_junk():
    dist_row = np.array([0.5, 0.1, 0.5, 0.0, 0.3])
    g_pids = np.array([7, 7, 3, 7, 3])
    g_cams = np.array([1, 2, 1, 1, 2])
    # query pid 7 in camera 1: gallery 0 and 3 are same id, same camera -> left out; tie 0.5 broken by index
    assert ranked_gallery(dist_row, 7, 1, g_pids, g_cams, topk=10).tolist() == [1, 4, 2]
    assert ranked_gallery(dist_row, 7, 1, g_pids, g_cams, topk=2).tolist() == [1, 4]
    assert ranked_gallery(dist_row, 7, 1, g_pids, g_cams, topk=10, ignore_camid=True).tolist() == [3, 1, 4, 0, 2]
