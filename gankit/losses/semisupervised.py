"""The (K+1)-class semi-supervised GAN's discriminator loss (Salimans et al. 2016, §5).

D is a K-class classifier with logits l_1..l_K; the (K+1)-th class, "generated", has
its logit fixed at 0, so p(y = j | x) = exp(l_j) / (Z(x) + 1) with Z = Σ_k exp(l_k)
and D(x) = p(y ∈ [K] | x) = Z / (Z + 1): D's ordinary real/fake logit is log Z(x)
(``gankit.nets.heads.ClassifierCritic``). The discriminator's loss (paper eqs. 5–6) is

    L = L_sup + L_unsup,
    L_sup   = −E_{(x,y) labelled} log p(y | x, y < K + 1)    (cross-entropy on l)
    L_unsup = −E_{x ~ data} log D(x) − E_{x ~ G} log(1 − D(x))
            =  E softplus(−log Z(x_data)) + E softplus(log Z(x_fake)).

With the non-saturating / minimax objective gankit's D cost is ½ L_unsup, so the
training step adds ½ L_sup (``supervised_loss``): D's cost is ½ L exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
__all__ = ["k_plus_one_loss", "supervised_loss"]


def k_plus_one_loss(labelled_logits: Tensor, labels: Tensor, real_logits: Tensor,
                    fake_logits: Tensor) -> Tensor:
    """L = L_sup + L_unsup above, from K class logits of a labelled batch and of
    unlabelled real and generated batches."""
    real_z, fake_z = real_logits.logsumexp(-1), fake_logits.logsumexp(-1)
    return F.cross_entropy(labelled_logits, labels) + F.softplus(-real_z).mean() + \
        F.softplus(fake_z).mean()


def supervised_loss(class_logits: Tensor, labels: Tensor) -> Tensor:
    """L_sup = −E log p(y | x, y < K + 1): the cross-entropy of D's K class logits."""
    return F.cross_entropy(class_logits, labels)
