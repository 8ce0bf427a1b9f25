import torch

from fastreid.config import get_cfg
from fastreid.modeling import build_model


def _cfg(channels_last: bool):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512",
                         "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.HEADS.NUM_CLASSES", "4",
                         "MODEL.CHANNELS_LAST", str(channels_last)])
    return cfg


def test_channels_last_model_gives_the_same_features_and_losses():
    torch.manual_seed(0)
    plain = build_model(_cfg(False))
    torch.manual_seed(0)
    nhwc = build_model(_cfg(True))
    assert nhwc.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.rand(4, 3, 32, 16) * 255
    assert nhwc.preprocess_image(images).is_contiguous(memory_format=torch.channels_last)
    plain.eval(), nhwc.eval()
    with torch.no_grad():
        torch.testing.assert_close(nhwc(images), plain(images), rtol=1e-4, atol=1e-4)
    plain.train(), nhwc.train()
    batch = {"images": images, "targets": torch.tensor([0, 0, 1, 1])}
    for key, value in plain(batch).items():
        torch.testing.assert_close(nhwc(batch)[key], value, rtol=1e-4, atol=1e-4)
