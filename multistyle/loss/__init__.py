"""The one loss path shared by Gatys, training and evaluation: the perceptual loss and style targets
(:mod:`.perceptual`) on a frozen loss network, VGG19 by default (:mod:`.vgg`; others in :mod:`.networks`)."""

from .perceptual import LossConfig, LossTerms, PerceptualLoss, StyleTargets, gram_matrix

__all__ = ["LossConfig", "LossTerms", "PerceptualLoss", "StyleTargets", "gram_matrix"]
