"""Semi-supervised GAN (Salimans et al. 2016, "Improved Techniques for Training GANs", §5).

D is a K-class classifier with logits l_1..l_K; the (K+1)-th class, "generated", has
its logit fixed at 0, so p(y = j | x) = exp(l_j) / (Z(x) + 1) with Z = Σ_k exp(l_k)
and D(x) = p(y ∈ [K] | x) = Z / (Z + 1): D's ordinary real/fake logit is log Z(x)
(``ClassifierCritic``). The discriminator's loss (paper eqs. 5–6) is

    L = L_sup + L_unsup,
    L_sup   = −E_{(x,y) labelled} log p(y | x, y < K + 1)    (cross-entropy on l)
    L_unsup = −E_{x ~ data} log D(x) − E_{x ~ G} log(1 − D(x))
            =  E softplus(−log Z(x_data)) + E softplus(log Z(x_fake)),

and G, by default, matches the mean of D's last hidden layer on real and generated
batches (feature matching, the paper's choice for semi-supervised learning). With the
non-saturating / minimax objective gankit's D cost is ½ L_unsup, so the training step
adds ½ L_sup: D's cost is ½ L exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankit.nets.mlp import ACTIVATIONS

Tensor = torch.Tensor


def k_plus_one_loss(labelled_logits: Tensor, labels: Tensor, real_logits: Tensor,
                    fake_logits: Tensor) -> Tensor:
    """L = L_sup + L_unsup above, from K class logits of a labelled batch and of
    unlabelled real and generated batches."""
    real_z, fake_z = real_logits.logsumexp(-1), fake_logits.logsumexp(-1)
    return F.cross_entropy(labelled_logits, labels) + F.softplus(-real_z).mean() + \
        F.softplus(fake_z).mean()


class ClassifierCritic(nn.Module):
    """A K-output network as GAN discriminator: ``forward`` gives the real/fake logit
    log Σ_k exp(l_k(x)), ``classify`` the K class logits, ``features=True`` the
    network's last hidden layer. In training mode ``input_noise = σ`` adds N(0, σ²) to
    the inputs and ``hidden_noise = σ_h`` adds N(0, σ_h²) to the output of every hidden
    activation of ``net`` (Salimans et al.'s MNIST discriminator: σ = 0.3, σ_h = 0.5)."""

    def __init__(self, net: nn.Module, num_classes: int, input_noise: float = 0.0,
                 hidden_noise: float = 0.0) -> None:
        super().__init__()
        self.net, self.num_classes, self.out_dim = net, num_classes, 1
        self.noise = GaussianNoise(input_noise)
        if hidden_noise:
            # a hook on each activation module, so any D (MLP or DCGAN) takes it unchanged
            hidden = GaussianNoise(hidden_noise)
            # the activation types gankit's networks use (DCGAN's LeakyReLU among them)
            kinds = tuple({type(make()) for make in ACTIVATIONS.values()})
            for module in net.modules():
                if isinstance(module, kinds):
                    module.register_forward_hook(lambda mod, args, out: hidden(out)
                                                 if mod.training else out)

    def classify(self, x: Tensor) -> Tensor:
        return self.net(self.noise(x))

    def forward(self, x: Tensor, features: bool = False) -> Tensor:
        if features:
            return self.net(self.noise(x), features=True)
        return self.classify(x).logsumexp(-1)


class GaussianNoise(nn.Module):
    """Additive N(0, σ²) noise in training mode only (the paper's D regulariser)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or not self.std:
            return x
        return x + self.std * torch.randn_like(x)


def labelled_subset(labels: Tensor, per_class: int, num_classes: int, seed: int) -> Tensor:
    """Indices of ``per_class`` examples of each class, drawn without replacement with
    ``seed`` (class-balanced: K · per_class labels in all)."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for k in range(num_classes):
        idx = (labels == k).nonzero().squeeze(1)
        if len(idx) < per_class:
            from gankit.errors import GankitError

            raise GankitError(f"semisupervised.labels_per_class: {per_class} but class {k} "
                              f"has {len(idx)} training examples; allowed: <= {len(idx)}")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(picks)


@torch.no_grad()
def classification_error(critic: ClassifierCritic, images: Tensor, labels: Tensor,
               batch_size: int = 1000) -> float:
    """Fraction of ``images`` whose arg-max class logit is not their label."""
    was = critic.training
    critic.eval()
    device = next(critic.parameters()).device
    wrong = 0
    for i in range(0, len(images), batch_size):
        pred = critic.classify(images[i:i + batch_size].to(device)).argmax(-1).cpu()
        wrong += int((pred != labels[i:i + batch_size]).sum())
    critic.train(was)
    return wrong / max(1, len(images))


def train_labelled_only(critic: ClassifierCritic, images: Tensor, labels: Tensor, steps: int,
                        batch_size: int, lr: float, betas: tuple[float, float],
                        seed: int, schedule: str = "constant") -> ClassifierCritic:
    """The baseline: the same network trained by cross-entropy on the labelled examples
    alone, with the GAN's optimizer, batch size, learning-rate schedule (``constant`` or
    ``linear`` decay to 0) and number of D updates."""
    device = next(critic.parameters()).device
    images, labels = images.to(device), labels.to(device)
    opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)
    g = torch.Generator(device).manual_seed(seed)
    critic.train()
    for step in range(steps):
        if schedule == "linear":
            opt.param_groups[0]["lr"] = lr * (1 - step / steps)
        i = torch.randint(len(images), (batch_size,), generator=g, device=device)
        loss = F.cross_entropy(critic.classify(images[i]), labels[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return critic


def labelled_data(train, per_class: int, seed: int):
    """The labelled examples of an image train split (an ``ImageData``):
    ``per_class`` of each class, chosen by ``labelled_subset`` with ``seed``."""
    from gankit.data.images import ImageData

    idx = labelled_subset(train.labels, per_class, train.num_classes, seed)
    return ImageData(train.name, "labelled", train.images[idx], train.labels[idx],
                     train.num_classes)
