"""The style networks: the CIN style bank (:mod:`.cin`), v1 (:mod:`.v1`), v2 (:mod:`.v2`) and the registry that
builds either from a model file's metadata (:mod:`.registry`)."""

from .cin import ConditionalInstanceNorm, StyleBankNet, instance_norm_affine
from .registry import ARCHITECTURES, build_network
from .v1 import ARCHITECTURE, StyleNet, scaled_channels
from .v2 import ARCHITECTURE_V2, BLOCK_KINDS, PADDINGS, FastStyleNet

__all__ = ["ARCHITECTURE", "ARCHITECTURES", "ARCHITECTURE_V2", "BLOCK_KINDS", "PADDINGS", "ConditionalInstanceNorm",
           "FastStyleNet", "StyleBankNet", "StyleNet", "build_network", "instance_norm_affine", "scaled_channels"]
