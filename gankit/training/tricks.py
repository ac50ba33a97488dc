"""Training-step options that need state or higher-order gradients: historical
averaging, the generator's weight average, and unrolled discriminators."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from gankit.autodiff import double_backward
from gankit.nets.layers import MethodView
from gankit.nets.stacked import num_seeds
from gankit.training.distributed import unwrap

__all__ = ["HistoricalAverage", "GeneratorEMA", "standing_statistics", "FunctionalCritic",
           "Unroll", "unrolled_critic"]


class HistoricalAverage:
    """Penalty λ‖θ − θ̄‖² with θ̄ the mean of the player's past parameters.

    Salimans et al. (2016), §3.3. θ̄ is the running mean over all previous steps,
    θ̄_t = θ̄_{t−1} + (θ_t − θ̄_{t−1}) / t, updated after each of the player's updates.
    """

    def __init__(self, module: nn.Module, weight: float) -> None:
        self.weight = weight
        self.count = 1
        self.mean = {n: p.detach().clone() for n, p in module.named_parameters()}

    def penalty(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """λ‖θ − θ̄‖² of the player's named parameters (names as in the bare network)."""
        return self.weight * sum((p - self.mean[n]).square().sum() for n, p in params.items())

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.count += 1
        for n, p in unwrap(module).named_parameters():
            self.mean[n].add_(p - self.mean[n], alpha=1 / self.count)

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])
        for n, v in state["mean"].items():
            self.mean[n].copy_(v)


class GeneratorEMA:
    """Exponential moving average of G's weights, θ̄ ← β θ̄ + (1 − β) θ after each G update
    (Yazıcı et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training"; used by
    Karras et al. 2018 and Brock et al. 2019). Samples, snapshots and evaluation use θ̄
    (``sampler()``); training does not (G keeps learning with θ). Buffers are copied from
    G, not averaged; with ``standing`` (a function recomputing a module's batch-norm
    statistics, see ``standing_statistics``) they are recomputed for θ̄ before it is used.

    With ``rampup`` the t-th update uses β_t = min(β, (1 + t)/(10 + t)), t = 0, 1, ...
    (the ``num_updates`` of TensorFlow's ExponentialMovingAverage): without it the average
    still holds β^t of G's random initial weights after t updates (37% at β = 0.999 after
    1,000), which ruins its samples on short runs.
    """

    def __init__(self, generator: nn.Module, beta: float, rampup: bool = False,
                 standing: Callable[[nn.Module], None] | None = None) -> None:
        self.beta, self.rampup, self.updates = beta, rampup, 0
        self.module = copy.deepcopy(unwrap(generator)).requires_grad_(False)
        self.standing, self.stale = standing, True

    def current_beta(self) -> float:
        """β of the next update."""
        if not self.rampup:
            return self.beta
        return min(self.beta, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        generator = unwrap(generator)
        torch._foreach_lerp_(list(self.module.parameters()), list(generator.parameters()),
                             1 - self.current_beta())  # one fused op, no host sync
        self.updates += 1
        for mine, theirs in zip(self.module.buffers(), generator.buffers()):
            mine.copy_(theirs)
        self.stale = True

    def sampler(self) -> nn.Module:
        """θ̄, its batch-norm statistics recomputed first with ``standing`` (once per
        update: the recomputation draws from its own fixed stream, so it is repeatable)."""
        if self.standing is not None and self.stale:
            self.standing(self.module)
            self.stale = False
        return self.module


@torch.no_grad()
def standing_statistics(module: nn.Module, latents: Iterable[torch.Tensor]) -> None:
    """Set the running statistics of ``module``'s batch norms to the plain average of
    their batch statistics over a forward pass of each batch in ``latents``, in training
    mode — Brock et al. (2019), BigGAN §"standing statistics". The running statistics G
    keeps while it trains belong to its current weights θ; the moving average θ̄ of those
    weights normalises other activations, so θ̄ with G's copied statistics draws from
    neither G's distribution nor its own (on stacked MNIST it skews the share of each digit
    a channel draws). Nothing else of ``module`` changes."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta, was_training = [m.momentum for m in norms], module.training
    for m in norms:  # momentum None: the cumulative average of the batches' statistics
        m.reset_running_stats()
        m.momentum = None
    module.train()
    for z in latents:
        module(z)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    module.train(was_training)


class FunctionalCritic:
    """D's architecture evaluated with the parameters ``params`` (tensors that may depend
    on θ_G): ``critic(x)``, ``features(x)``, ``call_method(name, x)``."""

    def __init__(self, module: nn.Module, params: dict[str, torch.Tensor]) -> None:
        self.module, self.params = module, params

    def __call__(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        # (kwargs: a conditional D's classes y)
        return functional_call(self.module, self.params, (x,), kwargs)

    def call_method(self, name: str, x: torch.Tensor):
        view = MethodView(self.module, name)
        return functional_call(view, {f"module.{k}": v for k, v in self.params.items()}, (x,))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.call_method("features", x)


@dataclass(frozen=True)
class Unroll:
    """Unrolled GAN: G's update reads D after ``steps`` differentiable updates of D's
    own optimizer ``opt_d`` on D's own ``cost`` (a ``gankit.training.costs.Cost``)."""

    steps: int
    opt_d: torch.optim.Adam
    cost: Callable


def unrolled_critic(discriminator: nn.Module, unroll: Unroll, batch) -> FunctionalCritic:
    """D after ``unroll.steps`` differentiable Adam updates on ``batch`` (real, fake with
    its graph to G), as a function of x.

    The inner cost is D's own (the same ``Cost`` the D step minimises: objective,
    penalties, historical average). (The gradient penalty's x̂ detaches the fake batch, so
    the penalty's own dependence on θ_G is left out of the surrogate.)

    Unrolled GAN (Metz et al. 2017, eq. 6–7): the surrogate G loss f(θ_G, U^k(θ_D, θ_G))
    back-propagates through the k updates U of D, which depend on θ_G through the fake
    batch. The inner updates mirror D's own Adam (its moments and step count, its
    learning rate and betas), written out so autograd can differentiate them.
    """
    names = [n for n, _ in discriminator.named_parameters()]
    params = dict(discriminator.named_parameters())
    group = unroll.opt_d.param_groups[0]
    lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
    state = {n: unroll.opt_d.state.get(p, {}) for n, p in params.items()}
    m = {n: state[n].get("exp_avg", torch.zeros_like(params[n])) for n in names}
    v = {n: state[n].get("exp_avg_sq", torch.zeros_like(params[n])) for n in names}
    t = float(state[names[0]].get("step", 0))
    seeds = num_seeds(discriminator)
    for _ in range(unroll.steps):
        with double_backward():  # G's backward differentiates these inner gradients again
            loss = unroll.cost(FunctionalCritic(discriminator, params), batch, params, seeds)
        # (a parameter the cost does not read, such as an unused head, gets a zero gradient)
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True,
                                    allow_unused=True, materialize_grads=True)
        t += 1
        new = {}
        for n, g in zip(names, grads):
            m[n] = b1 * m[n] + (1 - b1) * g
            v[n] = b2 * v[n] + (1 - b2) * g.square()
            v_hat = (v[n] / (1 - b2**t)).clamp_min(1e-30)  # keeps d√v finite where v = 0
            new[n] = params[n] - lr * (m[n] / (1 - b1**t)) / (v_hat.sqrt() + eps)
        params = new
    return FunctionalCritic(discriminator, params)
