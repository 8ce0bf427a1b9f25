#!/usr/bin/env python
"""torchreid's ``scripts/main.py`` on fastreid: train and test with torchreid's config schema and recipes.

    python tools/torchreid_main.py --config-file configs/torchreid/recipes/im_r50_softmax_256x128_amsgrad.yaml \
        --transforms random_flip random_erase --root $DATA
    python tools/torchreid_main.py --config-file CFG --root $DATA \
        model.load_weights log/resnet50_market1501_softmax/model/model.pth.tar-60 test.evaluate True

See :mod:`fastreid.torchreid.cli` (also runnable as ``python -m fastreid.torchreid.cli``).
"""
from fastreid.torchreid.cli import build_parser, main

get_parser = build_parser  # the name every tool's parser goes by (tests/tools parse the documented commands)

if __name__ == "__main__":
    main()
