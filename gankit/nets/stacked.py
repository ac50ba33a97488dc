"""Seeds in parallel: S independent copies of a network trained together in one process.

``Stacked`` holds each parameter of the S copies as one tensor with a leading seed
dimension and runs the copies with ``torch.func.vmap`` over ``functional_call``, so
each layer is one batched matmul instead of S small ones. Each copy only ever sees its
own slice of the input: packing, minibatch discrimination and virtual batch norm stay
per seed. Adam is elementwise, so one optimizer over the stacked tensors is S
independent optimizers.

Plain MLPs (linear layers and activations, packed or not, with or without a categorical
latent code) skip vmap: a copy of the architecture whose linear layers read the stacked
weights runs each layer as one ``baddbmm`` — the same arithmetic without vmap's and
``functional_call``'s per-call work, which dominates a small network's step.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from gankit.nets.layers import MethodView, Packed
from gankit.nets.mlp import ACTIVATIONS

__all__ = ["num_seeds", "SeedLinear", "Stacked"]


def num_seeds(module: nn.Module) -> int:
    """How many independent copies ``module`` trains together (1 for a plain network)."""
    module = getattr(module, "module", module)  # inside a DistributedDataParallel wrapper
    return module.seeds if isinstance(module, Stacked) else 1


def _key(name: str) -> str:  # parameter names may not contain dots
    return name.replace(".", "__")


class SeedLinear(nn.Module):
    """``nn.Linear`` of S seeds at once, reading the stacked weight (S, out, in) and bias
    (S, out) from a ``Stacked``'s parameters at call time (so ``functional_call`` on the
    ``Stacked`` — unrolled D updates — is honoured): x (S, ..., in) → (S, ..., out)."""

    def __init__(self, params: nn.ParameterDict, weight: str, bias: str | None) -> None:
        super().__init__()
        self.__dict__["_params"] = params  # not a submodule: the Stacked owns them
        self.weight_key, self.bias_key = weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self._params[self.weight_key]
        # Computed transposed, out^T = W x^T: W's gradient (grad^T x) then comes out in
        # W's own layout (no copy per step), and a transposed input — the previous
        # layer's output — is contiguous again.
        xt = x.reshape(x.shape[0], -1, x.shape[-1]).transpose(1, 2)
        if self.bias_key is None:
            out = torch.bmm(w, xt)
        else:
            out = torch.baddbmm(self._params[self.bias_key].unsqueeze(2), w, xt)
        return out.transpose(1, 2).reshape(*x.shape[:-1], w.shape[1])


def _batched_copy(template: nn.Module, params: nn.ParameterDict) -> nn.Module | None:
    """The fast path: ``template`` with each ``nn.Linear`` replaced by a ``SeedLinear`` on
    ``params``, if every part of it acts on any leading dimensions (linear layers,
    activations, and modules that declare ``any_leading_dims = True``); else None (vmap)."""
    allowed = (nn.Sequential, nn.Linear, *(type(make()) for make in ACTIVATIONS.values()))
    for module in template.modules():
        if not (isinstance(module, allowed) or getattr(module, "any_leading_dims", False)) \
                or getattr(module, "vbn", None) is not None or \
                getattr(module, "mbd", None) is not None or \
                (isinstance(module, Packed) and module.sample_dims is None):
            return None
    if any(True for _ in template.buffers()):
        return None
    fast = copy.deepcopy(template)
    for name, module in list(fast.named_modules()):
        if isinstance(module, nn.Linear):
            parent, _, attr = name.rpartition(".")
            layer = SeedLinear(params, _key(name + ".weight"),
                               _key(name + ".bias") if module.bias is not None else None)
            setattr(fast.get_submodule(parent) if parent else fast, attr, layer)
    return fast


class Stacked(nn.Module):
    """S networks of one architecture as one module: input (S, n, ...) → output (S, ...).

    ``call_method(name, x)`` runs another method of every copy (``features``, ``q``).
    ``unstack(i)`` returns copy i as a plain network.
    """

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        super().__init__()
        self.seeds = len(modules)
        params, buffers = stack_module_state(list(modules))
        self.params = nn.ParameterDict({_key(k): nn.Parameter(v.detach())
                                        for k, v in params.items()})
        for k, v in buffers.items():
            self.register_buffer("buffer__" + _key(k), v)
        self._param_names, self._buffer_names = list(params), list(buffers)
        # Architecture only (no storage): the stacked tensors above are the weights.
        # Kept out of the module tree so it is neither a parameter owner nor saved.
        self.__dict__["_template"] = copy.deepcopy(modules[0]).to("meta")
        self.__dict__["_batched"] = _batched_copy(self._template, self.params)

    def _state(self) -> tuple[dict, dict]:
        params = {n: self.params[_key(n)] for n in self._param_names}
        buffers = {n: getattr(self, "buffer__" + _key(n)) for n in self._buffer_names}
        return params, buffers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.call_method("forward", x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.call_method("features", x)

    def call_method(self, name: str, x: torch.Tensor):
        """Each copy's ``<name>(x)`` on its own slice of x (``forward``, ``features``,
        ``q``, ...)."""
        if self._batched is not None:
            return self._batched(x) if name == "forward" else \
                MethodView(self._batched, name)(x)
        template = self._template if name == "forward" else MethodView(self._template, name)
        prefix = "" if name == "forward" else "module."

        def one(params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
            state = {prefix + k: v for k, v in params.items()}
            state.update({prefix + k: v for k, v in buffers.items()})
            return functional_call(template, state, (x,))

        return vmap(one)(*self._state(), x)

    @property
    def template(self) -> nn.Module:
        """The architecture without weights (on the meta device): for methods that read
        no weights, such as ``InfoGenerator.codes``."""
        return self._template

    def unstack(self, i: int) -> nn.Module:
        """Copy ``i`` as a plain network (a detached copy of its weights)."""
        params, buffers = self._state()
        module = copy.deepcopy(self._template).to_empty(device=self.params[_key(
            self._param_names[0])].device)
        state = {n: t[i].detach().clone() for n, t in {**params, **buffers}.items()}
        module.load_state_dict(state)
        return module
