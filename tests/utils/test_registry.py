import pytest

from fastreid.utils.registry import Registry


def test_register_get_and_alias():
    reg = Registry("TOY")

    @reg.register()
    class GlobalAvgPool:
        pass

    reg.register_alias("avgpool", "GlobalAvgPool")
    assert reg.get("GlobalAvgPool") is GlobalAvgPool
    assert reg.get("avgpool") is GlobalAvgPool
    assert "avgpool" in reg and "GlobalAvgPool" in reg and "nothing" not in reg
    assert reg.canonical_name("avgpool") == "GlobalAvgPool"
    assert list(reg.names()) == ["GlobalAvgPool", "avgpool"]


def test_duplicates_fail():
    reg = Registry("TOY")

    def build_a(cfg):
        return cfg

    reg.register(build_a)
    with pytest.raises(KeyError, match="already registered"):
        reg.register(build_a)
    with pytest.raises(KeyError, match="already registered"):
        reg.register_alias("build_a", "build_a")


def test_unknown_name_lists_registered_names_and_closest():
    reg = Registry("BACKBONE")

    @reg.register()
    def build_resnet_backbone(cfg):
        return cfg

    @reg.register()
    def build_osnet_backbone(cfg):
        return cfg

    with pytest.raises(KeyError) as info:
        reg.get("build_resnt_backbone")
    message = str(info.value)
    assert "BACKBONE" in message and "build_osnet_backbone" in message
    assert "Did you mean 'build_resnet_backbone'" in message
