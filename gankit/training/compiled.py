"""``train.compile_update``: a step's D update and G update compiled as one graph.

Eager PyTorch runs a small GAN's step as a few hundred operator calls, each with its
dispatcher and autograd bookkeeping, and on a CPU that overhead, not the arithmetic, is
most of the step (``gankit bench throughput`` profiles it). Compiling the networks or
Adam alone leaves the autograd engine and the seams between them. Here the whole step is
one function of tensors, which ``torch.compile`` traces into one graph:

- G's forward pass once, by ``torch.func.vjp``: D's update reads the fake batch as data,
  and G's update pulls D's gradient at the fake batch back through the same pass (the
  eager step shares it the same way);
- D's gradient by ``torch.func.grad`` of D's cost (the step's own ``Cost``) on D's
  parameters, through ``FunctionalCritic``; G's cost differentiated in the fake batch;
- each player's Adam by ``torch.optim.adam.adam`` on the optimizer's own state tensors,
  so checkpoints, resume and the learning-rate schedule (a tensor filled in place: no
  recompilation) are those of the eager run.

Batch norm's running statistics are updated as in the eager step, once per forward pass:
each transformed function works on copies of the buffers and returns them.

The numbers equal the eager step's within float rounding (compiled kernels sum in
another order), not bit for bit; over a run the two drift apart as any two kernels'
roundings do. What it cannot trace is refused by the config rules (``NOT_COMPILED``):
costs that differentiate D in its input (gradient penalty, R1, R2), unrolling,
historical averaging, weight clipping, extra D or G updates per step, top-k (its k
changes with the step), torchrun and the other two compile options.

With ``cuda_graphs`` (``train.cuda_graphs``, CUDA only) the compiled update is also
recorded once as a CUDA graph and replayed at every step (torch.compile's
"reduce-overhead" mode), which removes the kernel launches' cost as well. A replay may
only write tensors whose addresses stay fixed: the parameters, batch norm's buffers and
Adam's state (capturable: its step counts and learning rate on the GPU) are marked
static; the batch is copied into the graph's own inputs; the statistics it returns are
copied out, since the next replay overwrites them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, grad_and_value, vjp
from torch.optim.adam import adam

from gankit.nets.stacked import num_seeds
from gankit.training.costs import Batch, Cost
from gankit.training.tricks import FunctionalCritic

__all__ = ["CompiledUpdate", "adam_state"]


def adam_state(opt: torch.optim.Adam) -> tuple[list, list, list, list]:
    """(parameters, first moments, second moments, step counts) of a one-group Adam,
    its state created as ``Adam.step`` creates it where it is still empty (a capturable
    Adam's step counts on its parameters' device, as CUDA graphs need)."""
    params, capturable = opt.param_groups[0]["params"], opt.param_groups[0]["capturable"]
    for p in params:
        if not opt.state[p]:
            opt.state[p] = {"step": torch.tensor(0.0, device=p.device if capturable else None),
                            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                            "exp_avg_sq": torch.zeros_like(p,
                                                           memory_format=torch.preserve_format)}
    states = [opt.state[p] for p in params]
    return (params, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
            [s["step"] for s in states])


def _adam(opt: torch.optim.Adam, state: tuple, grads: list) -> None:
    """Adam's update of ``state`` (from ``adam_state``) with ``grads``, in place."""
    group = opt.param_groups[0]
    params, exp_avgs, exp_avg_sqs, steps = state
    b1, b2 = group["betas"]
    with torch.no_grad():
        adam(params, grads, exp_avgs, exp_avg_sqs, [], steps, foreach=False,
             capturable=group["capturable"], amsgrad=False, beta1=b1, beta2=b2, lr=group["lr"],
             weight_decay=group["weight_decay"], eps=group["eps"],
             maximize=False)


def _buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the module's buffers (batch norm's running statistics), to be made inside
    a function transformed by torch.func: it may update tensors it made, not ones it closes
    over. The caller returns them and ``_copy_buffers`` writes them back."""
    return {n: b.clone() for n, b in module.named_buffers()}


def _copy_buffers(module: nn.Module, buffers: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for n, b in module.named_buffers():
            b.copy_(buffers[n])


class CompiledUpdate:
    """One D update then one G update on a ``Batch``, as one compiled function.

    ``update(batch, stats, detailed)`` writes ``loss_d`` and ``loss_g`` into ``stats``
    (and with ``detailed`` mean D(real), mean D(fake) and both gradient norms), as the
    eager steps do. ``compile = False`` runs the same function eagerly (tests). The
    first call compiles (tens of seconds on a CPU; ``first_call_s``, which a run's
    summary.json reports as ``compile_update_first_step_s``); the first logging step's
    ``detailed`` variant compiles once more. ``cuda_graphs``: compiled in
    "reduce-overhead" mode (CUDA graphs on a GPU; on a CPU torch.compile records none).
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module,
                 opt_g: torch.optim.Adam, opt_d: torch.optim.Adam, d_cost: Cost,
                 g_cost: Cost, *, compile: bool = True, cuda_graphs: bool = False) -> None:
        self.generator, self.discriminator = generator, discriminator
        self.opt_g, self.opt_d, self.d_cost, self.g_cost = opt_g, opt_d, d_cost, g_cost
        self.seeds = num_seeds(discriminator)
        self.names_g = [n for n, _ in generator.named_parameters()]
        self.names_d = [n for n, _ in discriminator.named_parameters()]
        self.first_call_s: float | None = None
        self.cuda_graphs = cuda_graphs
        # (dynamo guards on the instance and its players; a run clears its caches first)
        self.compiled: Callable = torch.compile(
            self._update, mode="reduce-overhead" if cuda_graphs else None) \
            if compile else self._update

    def __call__(self, batch: Batch, stats: dict, detailed: bool = False) -> None:
        start = time.perf_counter()
        # The optimizers' state is read at every call: resume and rollback replace it.
        state_d, state_g = adam_state(self.opt_d), adam_state(self.opt_g)
        if self.cuda_graphs:
            self._mark_static(state_d, state_g)
            torch.compiler.cudagraph_mark_step_begin()  # (the last step's outputs are read)
        out = self.compiled(batch.real, batch.z, batch.codes, batch.labelled, batch.classes,
                            state_d, state_g, detailed)
        if self.cuda_graphs:  # (the next replay writes over the graph's outputs)
            out = {k: v.clone() for k, v in out.items()}
        stats.update(out)
        if self.first_call_s is None:  # (the compilation; the run's summary reports it)
            self.first_call_s = time.perf_counter() - start

    def _mark_static(self, *states: tuple) -> None:
        """Tell the CUDA graph that what the update writes stays at its address (a
        resume's new tensors are recorded again, not recompiled)."""
        tensors = [t for state in states for group in state for t in group]
        tensors += [*self.generator.buffers(), *self.discriminator.buffers()]
        tensors += [opt.param_groups[0]["lr"] for opt in (self.opt_d, self.opt_g)]
        for t in tensors:
            torch._dynamo.mark_static_address(t)

    def _update(self, real, z, codes, labelled, classes, state_d, state_g,
                detailed: bool) -> dict:
        g, d, seeds = self.generator, self.discriminator, self.seeds
        batch = Batch(real, z, codes=codes, labelled=labelled, classes=classes)
        params_g = {n: p.detach() for n, p in zip(self.names_g, state_g[0])}
        params_d = {n: p.detach() for n, p in zip(self.names_d, state_d[0])}

        def g_forward(params: dict) -> tuple[torch.Tensor, dict]:
            buffers = _buffers(g)
            return functional_call(g, (params, buffers), (z,)), buffers

        # G(z) once: D's update reads it as data, G's pulls its gradient back through it
        fake, pull_back, buffers_g = vjp(g_forward, params_g, has_aux=True)
        _copy_buffers(g, buffers_g)

        def d_loss(params: dict) -> tuple[torch.Tensor, tuple]:
            logs, buffers = {}, _buffers(d)
            loss = self.d_cost(FunctionalCritic(d, {**params, **buffers}),
                               dataclasses.replace(batch, fake=fake), params, seeds, logs)
            return loss, (loss, logs["real_logits"], logs["fake_logits"], buffers)

        grads_d, (loss_d, real_logits, fake_logits, buffers_d) = grad(
            d_loss, has_aux=True)(params_d)
        _copy_buffers(d, buffers_d)
        grads_d_list = [grads_d[n] for n in self.names_d]
        _adam(self.opt_d, state_d, grads_d_list)

        def g_loss(x: torch.Tensor) -> tuple[torch.Tensor, dict]:  # on D after its update
            buffers = _buffers(d)
            return self.g_cost(FunctionalCritic(d, {**params_d, **buffers}),
                               dataclasses.replace(batch, fake=x), params_g, seeds), buffers

        grad_fake, (loss_g, buffers_d) = grad_and_value(g_loss, has_aux=True)(fake)
        _copy_buffers(d, buffers_d)
        (grads_g,) = pull_back(grad_fake)
        grads_g_list = [grads_g[n] for n in self.names_g]
        _adam(self.opt_g, state_g, grads_g_list)
        out = {"loss_d": loss_d, "loss_g": loss_g}
        if seeds > 1:  # (the costs are sums over seeds; stats are means, as eager)
            out = {k: v / seeds for k, v in out.items()}
        if detailed:
            out.update(d_real=torch.sigmoid(real_logits).mean(),
                       d_fake=torch.sigmoid(fake_logits).mean(),
                       grad_norm_d=torch.nn.utils.get_total_norm(grads_d_list),
                       grad_norm_g=torch.nn.utils.get_total_norm(grads_g_list))
        return out
