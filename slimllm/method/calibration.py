"""Layer-by-layer calibration: capture what enters the first decoder layer, then walk.

Only one layer's activations are held at a time: the hidden states entering layer i (one
tensor per calibration batch) are pushed through layer i to become the inputs of layer i + 1.
Hooks on sub-modules (o_proj, down_proj, ...) collect what a pruner needs on the way. The model
may stay on the CPU while each layer visits `device` in turn, so large models prune on one GPU;
a `LayerHome` says where a layer is between visits (in the model, or in checkpoint shards that
are read one layer at a time), and the forwards may run in another dtype than the weights.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from slimllm.models.adapters import ModelAdapter, get_adapter

#: callback(name, module_input, module_output) for a hooked sub-module, once per batch.
HookFn = Callable[[str, torch.Tensor, torch.Tensor], None]


class _StopForward(Exception):
    """Raised by the catcher after the last layer has recorded its inputs."""


class _Catcher(nn.Module):
    """Stands in for a decoder layer: records its inputs and passes hidden states through."""

    def __init__(self, layer: nn.Module, store: list[dict[str, Any]], stop: bool) -> None:
        super().__init__()
        self.layer = layer
        self.store = store
        self.stop = stop
        # Some models read per-layer attributes (e.g. Gemma's attention_type) in their loop.
        for attr in ("attention_type", "layer_idx"):
            if hasattr(layer, attr):
                setattr(self, attr, getattr(layer, attr))

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if args:
            raise TypeError(
                "decoder layers are expected to take keyword arguments after hidden_states"
            )
        self.store.append({"hidden": hidden_states, "kwargs": kwargs})
        if self.stop:
            raise _StopForward
        return hidden_states


def _to(value: Any, device: torch.device | None, dtype: torch.dtype | None = None) -> Any:
    """`value` (a tensor, or tuples, lists and dicts of them) on `device`, floating tensors in
    `dtype`."""
    if isinstance(value, torch.Tensor):
        cast = dtype if dtype is not None and value.is_floating_point() else None
        return value.to(device=device, dtype=cast)
    if isinstance(value, (tuple, list)):
        return type(value)(_to(v, device, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _to(v, device, dtype) for k, v in value.items()}
    return value


@dataclass
class LayerInputs:
    """Hidden states entering one decoder layer and the keyword arguments of each batch."""

    hidden: list[torch.Tensor]
    kwargs: list[list[dict[str, Any]]]  # [layer][batch]


@torch.no_grad()
def capture_layer_inputs(
    model: nn.Module,
    input_ids: torch.Tensor,
    batch_size: int = 8,
    adapter: ModelAdapter | None = None,
) -> LayerInputs:
    """Run the embeddings once and record the inputs of layer 0 and every layer's kwargs.

    Every layer is swapped for a pass-through catcher, so the decoder does no layer work; the
    per-layer kwargs (masks, rotary embeddings) differ between layers in some families (Gemma's
    sliding and global attention), so each is recorded. Tensors stay on the model's device.
    """
    adapter = adapter or get_adapter(model)
    layers = adapter.layers(model)
    device = next(model.parameters()).device
    originals = list(layers)
    hidden: list[torch.Tensor] = []
    per_layer: list[list[dict[str, Any]]] = [[] for _ in originals]
    try:
        stores: list[list[dict[str, Any]]] = [[] for _ in originals]
        for i, layer in enumerate(originals):
            layers[i] = _Catcher(layer, stores[i], stop=i == len(originals) - 1)
        for start in range(0, input_ids.size(0), batch_size):
            batch = input_ids[start : start + batch_size].to(device)
            with suppress(_StopForward):
                model(input_ids=batch, use_cache=False)
        hidden = [entry["hidden"] for entry in stores[0]]
        for i, store in enumerate(stores):
            per_layer[i] = [entry["kwargs"] for entry in store]
    finally:
        for i, layer in enumerate(originals):
            layers[i] = layer
    return LayerInputs(hidden=hidden, kwargs=per_layer)


@contextmanager
def hooks(modules: Mapping[str, nn.Module], fn: HookFn) -> Iterator[None]:
    """Call fn(name, input, output) after each forward of the named sub-modules."""

    def make(name: str) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def hook(_: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            fn(
                name,
                args[0].detach(),
                output.detach() if isinstance(output, torch.Tensor) else output,
            )

        return hook

    handles = [m.register_forward_hook(make(name)) for name, m in modules.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def run_layer(
    layer: nn.Module,
    hidden: list[torch.Tensor],
    kwargs: list[dict[str, Any]],
    device: torch.device | str | None = None,
    watch: Mapping[str, nn.Module] | None = None,
    on_output: HookFn | None = None,
    stop_after: nn.Module | None = None,
) -> list[torch.Tensor]:
    """Push every calibration batch through one layer and return the outputs.

    `watch` names sub-modules whose (input, output) go to `on_output` batch by batch.
    With `stop_after`, each batch stops once that sub-module has run (e.g. o_proj, when only
    attention statistics are wanted) and nothing is returned. The layer runs on `device`
    (default: where it is); outputs come back to the inputs' device.
    """
    device = torch.device(device) if device is not None else next(layer.parameters()).device
    outputs = []

    def stop(*_: Any) -> None:
        raise _StopForward

    with hooks(watch or {}, on_output or (lambda *_: None)):
        # Registered after the watchers, so they still see the module's output.
        handle = stop_after.register_forward_hook(stop) if stop_after is not None else None
        try:
            for h, kw in zip(hidden, kwargs, strict=True):
                try:
                    out = layer(h.to(device), **_to(kw, device))
                except _StopForward:
                    continue
                out = out[0] if isinstance(out, tuple) else out
                outputs.append(out.to(h.device))
        finally:
            if handle is not None:
                handle.remove()
    return outputs


@contextmanager
def replayed(module: nn.Module, outputs: Sequence[Any]) -> Iterator[None]:
    """While open, the i-th call of `module` returns outputs[i] instead of computing anything.

    A pruner that already holds what a sub-module gives on each calibration batch (its pruned
    attention, say) runs the rest of the layer around it without recomputing it.
    """
    feed = iter(outputs)
    # An instance attribute shadows the class's forward for this module alone.
    module.forward = lambda *_args, **_kwargs: next(feed)
    try:
        yield
    finally:
        del module.forward


@dataclass
class LayerStep:
    """One stop of the walk: the layer, its index and the hidden states entering it."""

    index: int
    layer: nn.Module
    inputs: list[torch.Tensor]
    kwargs: list[dict[str, Any]]
    #: The layer the calibration forwards run on: `layer` itself, or (a walk in another dtype
    #: than the weights) a copy of it in that dtype, made when the step began.
    work: nn.Module | None = None
    #: Set by a consumer that already has the layer's outputs as it now is; else the walker
    #: runs the layer to get them.
    outputs: list[torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if self.work is None:
            self.work = self.layer


class LayerHome:
    """Where decoder layers stay between visits: here, in the model, wherever each one is.

    A walk fetches each layer onto its device before the visit and releases it after; a home
    that keeps layers elsewhere (checkpoint shards on disk) loads and writes them instead.
    """

    def __init__(self) -> None:
        self._homes: dict[int, torch.device] = {}

    def fetch(self, index: int, layer: nn.Module, device: torch.device) -> None:
        """Make `layer` (layer `index` of the model) usable on `device`."""
        self._homes[index] = next(layer.parameters()).device
        layer.to(device)

    def release(self, index: int, layer: nn.Module, final: bool) -> None:
        """Put `layer` back; `final`: the walk's changes to it are the result (a pruning walk)."""
        layer.to(self._homes.pop(index))


def _in_dtype(layer: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """`layer` itself, or a copy of it with its floating tensors in `dtype`.

    The copy's tensors are made in `dtype` straight from the layer's (the deepcopy memo maps
    each to its converted twin), not cloned first and converted after: the same values at a
    fraction of the time (the clones were a twentieth of a bfloat16 pruning of SmolLM2).
    """
    if dtype is None or next(layer.parameters()).dtype == dtype:
        return layer
    memo: dict[int, Any] = {}
    for tensor in [*layer.parameters(), *layer.buffers()]:
        if tensor.is_floating_point():
            twin = tensor.detach().to(dtype, copy=True)
            if isinstance(tensor, nn.Parameter):
                twin = nn.Parameter(twin, requires_grad=tensor.requires_grad)
            memo[id(tensor)] = twin
    return copy.deepcopy(layer, memo)


class LayerWalker:
    """Walk the decoder layers in order, feeding each the outputs of the (possibly pruned) last.

    for step in walker:   # step.inputs are the hidden states entering step.layer
        ...               # collect statistics with run_layer(...), prune step.layer in place
    After each step the walker recomputes the layer's outputs with the layer as it is then
    (unless the step set `step.outputs`), so layer i + 1 is calibrated on what the
    already-pruned layers produce; `on_outputs(step, outputs)`, if given, sees them (e.g. to
    compare each layer's input with its output).

    With `dtype`, hidden states and forwards are in that dtype (`step.work` is the layer's copy
    in it) while the weights stay as they are; `home` fetches and releases the layers, and
    `final` tells it whether this walk's changes are the result. `captured`: the inputs of the
    first layer (and every layer's kwargs) as an earlier walk of the same ids, batch size and
    dtype took them (its `captured`), so they are not taken again.
    """

    def __init__(
        self,
        model: nn.Module,
        input_ids: torch.Tensor,
        batch_size: int = 8,
        device: torch.device | str | None = None,
        progress: bool = True,
        adapter: ModelAdapter | None = None,
        on_outputs: Callable[[LayerStep, list[torch.Tensor]], None] | None = None,
        dtype: torch.dtype | None = None,
        home: LayerHome | None = None,
        final: bool = False,
        captured: LayerInputs | None = None,
    ) -> None:
        self.model = model
        self.on_outputs = on_outputs
        self.adapter = adapter or get_adapter(model)
        self.device = (
            torch.device(device) if device is not None else next(model.parameters()).device
        )
        self.progress = progress
        self.dtype = dtype
        self.home = home or LayerHome()
        self.final = final
        if captured is None:
            captured = capture_layer_inputs(model, input_ids, batch_size, self.adapter)
            # The rotary tables and masks join the hidden states' dtype, as in a model of that
            # dtype.
            captured = LayerInputs(
                hidden=[_to(h, None, dtype) for h in captured.hidden],
                kwargs=_to(captured.kwargs, None, dtype),
            )
        self.captured = captured
        #: Outputs of the last layer once the walk has finished.
        self.outputs: list[torch.Tensor] = []

    def __iter__(self) -> Iterator[LayerStep]:
        layers = self.adapter.layers(self.model)
        hidden = self.captured.hidden
        for i in tqdm(range(len(layers)), desc="layers", disable=not self.progress):
            layer = layers[i]
            self.home.fetch(i, layer, self.device)
            try:
                step = LayerStep(
                    i, layer, hidden, self.captured.kwargs[i], _in_dtype(layer, self.dtype)
                )
                yield step
                outputs = step.outputs
                if outputs is None:
                    outputs = run_layer(
                        _in_dtype(layer, self.dtype), hidden, step.kwargs, self.device
                    )
                if self.on_outputs is not None:
                    self.on_outputs(step, outputs)
                hidden = outputs
            finally:
                self.home.release(i, layer, self.final)
        self.outputs = hidden


@torch.no_grad()
def layer_hidden_states(
    model: nn.Module, input_ids: torch.Tensor, batch_size: int = 8
) -> list[torch.Tensor]:
    """Hidden states entering every layer, then the last layer's output, by walking the layers.

    Entry i is what layer i receives (entry 0: the embeddings); the final entry is before the
    model's final norm.
    """
    walker = LayerWalker(model, input_ids, batch_size, progress=False)
    collected = [torch.cat(step.inputs) for step in walker]
    collected.append(torch.cat(walker.outputs))
    return collected
