"""MODEL.BACKBONE.PRETRAIN's resolution: PRETRAIN_PATH, the hub cache, then a verified download.

Downloads come from an ``http.server`` on 127.0.0.1 serving files made here; the real internet is never used.
"""
import functools
import hashlib
import http.server
import os
import socket
import threading

import pytest
import torch
from torch import nn

from fastreid.modeling import pretrained
from fastreid.modeling.pretrained import (
    OFFLINE_ENV,
    KnownWeights,
    PretrainedWeightsNotFound,
    WeightsChecksumError,
    find_in_hub_cache,
    init_pretrained,
    resolve_pretrained_path,
)


class _Server:
    """Serves one folder on 127.0.0.1 and records the paths requested."""

    def __init__(self, folder):
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, name):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def _toy():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache in tmp_path, downloads allowed (the variable may be set for the whole suite)."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path / "hub" / "checkpoints"


@pytest.fixture
def served(tmp_path):
    """A weight file (state dict of a seeded toy model, with an ImageNet classifier) behind a local server."""
    folder = tmp_path / "www"
    folder.mkdir()
    torch.manual_seed(0)
    state = {**_toy().state_dict(), "fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}
    torch.save(state, folder / "toynet.pth")
    digest = hashlib.sha256((folder / "toynet.pth").read_bytes()).hexdigest()
    server = _Server(str(folder))
    yield server, state, digest
    server.close()


NAME = "toynet-0123abcd.pth"  # the cache name a backbone asks for


def _known(monkeypatch, url, sha256):
    monkeypatch.setitem(pretrained.KNOWN_WEIGHTS, NAME, KnownWeights(url, sha256))


@pytest.mark.parametrize("digest_length", [64, 8])  # the full digest, or torch hub's file-name prefix
def test_good_download_is_cached_verified_and_loaded(hub, served, monkeypatch, digest_length):
    server, state, digest = served
    _known(monkeypatch, server.url("toynet.pth"), digest[:digest_length])
    model = _toy()
    result = init_pretrained(model, True, "", [NAME])
    assert result.missing == [] and result.shape_mismatch == []
    assert torch.equal(model[0].weight, state["0.weight"])
    assert sorted(os.listdir(hub)) == [NAME]
    assert hashlib.sha256((hub / NAME).read_bytes()).hexdigest() == digest
    # The second time the cache answers; the server is not asked again.
    assert resolve_pretrained_path("", [NAME]) == str(hub / NAME)
    assert server.requests == ["/toynet.pth"]


def test_wrong_hash_raises_naming_both_digests_and_leaves_nothing(hub, served, monkeypatch):
    server, _, digest = served
    wrong = "f" * 64 if not digest.startswith("f") else "0" * 64
    _known(monkeypatch, server.url("toynet.pth"), wrong)
    with pytest.raises(WeightsChecksumError) as err:
        init_pretrained(_toy(), True, "", [NAME])
    assert wrong in str(err.value) and digest in str(err.value)
    assert os.listdir(hub) == []  # no file, no temporary


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_offline_message(message, hub, url):
    assert NAME in message and str(hub / NAME) in message and url in message
    assert "~/.cache/torch/hub/checkpoints" in message and "$TORCH_HOME" in message
    assert "MODEL.BACKBONE.PRETRAIN_PATH" in message and "MODEL.BACKBONE.PRETRAIN False" in message


def test_unreachable_server_gives_the_offline_message(hub, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}/toynet.pth"
    _known(monkeypatch, url, "0123abcd")
    with pytest.raises(PretrainedWeightsNotFound) as err:
        init_pretrained(_toy(), True, "", [NAME])
    assert isinstance(err.value, FileNotFoundError)  # torchreid's build_model falls back to random init on it
    _assert_offline_message(str(err.value), hub, url)
    assert "failed" in str(err.value)
    assert not hub.exists() or os.listdir(hub) == []


def test_missing_file_on_the_server_gives_the_offline_message(hub, served, monkeypatch):
    server, _, digest = served
    _known(monkeypatch, server.url("absent.pth"), digest)
    with pytest.raises(PretrainedWeightsNotFound, match="HTTP 404"):
        init_pretrained(_toy(), True, "", [NAME])
    assert os.listdir(hub) == []


def test_offline_variable_forbids_the_download(hub, served, monkeypatch):
    server, _, digest = served
    _known(monkeypatch, server.url("toynet.pth"), digest)
    monkeypatch.setenv(OFFLINE_ENV, "1")
    with pytest.raises(PretrainedWeightsNotFound) as err:
        init_pretrained(_toy(), True, "", [NAME])
    _assert_offline_message(str(err.value), hub, server.url("toynet.pth"))
    assert OFFLINE_ENV in str(err.value)
    assert server.requests == []


def test_file_without_known_url_is_never_downloaded(hub):
    with pytest.raises(PretrainedWeightsNotFound, match="RepVGG-A0-train.pth.*no download address"):
        init_pretrained(_toy(), True, "", ["RepVGG-A0-train.pth"])


def test_path_then_cache_come_before_the_download(hub, served, tmp_path, monkeypatch):
    server, state, digest = served
    _known(monkeypatch, server.url("toynet.pth"), digest)
    local = tmp_path / "mine.pth"
    torch.save(state, local)
    assert resolve_pretrained_path(str(local), [NAME]) == str(local)
    hub.mkdir(parents=True)
    torch.save(state, hub / "toynet-89abcdef.pth")  # the same weights re-released under another hash
    assert resolve_pretrained_path("", [NAME]) == str(hub / "toynet-89abcdef.pth")
    assert server.requests == []
    with pytest.raises(FileNotFoundError, match="PRETRAIN_PATH 'nowhere.pth' does not exist"):
        resolve_pretrained_path("nowhere.pth", [NAME])


def test_other_hash_lookup_needs_a_hashed_name(hub):
    hub.mkdir(parents=True)
    (hub / "RepVGG-A0-deploy.pth").write_bytes(b"")
    (hub / "resnet18-extra-0123abcd.pth").write_bytes(b"")
    # A name without a digest matches only itself, and a digest matches only the same architecture.
    with pytest.raises(PretrainedWeightsNotFound):
        find_in_hub_cache(["RepVGG-A0-train.pth", "resnet18-f37072fd.pth"])


def test_known_weights_are_hashed_and_reached_by_the_backbones():
    for name, known in pretrained.KNOWN_WEIGHTS.items():
        assert known.url.endswith("/" + name) and known.url.startswith("https://")
        assert len(known.sha256) >= 8 and all(c in "0123456789abcdef" for c in known.sha256)
    assert {"resnet50-0676ba61.pth", "resnest50-528c19ca.pth"} <= set(pretrained.KNOWN_WEIGHTS)
