"""Importing this module makes mmdet 3.3's DINO decoder work at the tiny
test width (embed_dims 32), for tiny DINO models run by the tools in a
subprocess (a config lists it in ``custom_imports``; the test puts this
folder, and nothing else, on the subprocess's PYTHONPATH).

mmdet 3.3's ``DinoTransformerDecoder`` encodes its box references with
``coordinate_to_encoding``'s default ``num_feats=128``, right for
``embed_dims`` 256 only (the reference uses ``embed_dims // 2``); every
published DINO has 256. In-process tests use
:func:`tests.models.golden_models.dino_num_feats` instead.
"""
import functools

from mmdet.models.layers.transformer import dino_layers, utils

#: The width of the tiny test models' transformers.
EMBED_DIMS = 32

dino_layers.coordinate_to_encoding = functools.partial(
    utils.coordinate_to_encoding, num_feats=EMBED_DIMS // 2)
