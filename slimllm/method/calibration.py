"""Layer-by-layer calibration: capture what enters the first decoder layer, then walk.

Only one layer's activations are held at a time: the hidden states entering layer i (one
tensor per calibration batch) are pushed through layer i to become the inputs of layer i + 1.
Hooks on sub-modules (o_proj, down_proj, ...) collect what a pruner needs on the way. The model
may stay on the CPU while each layer visits `device` in turn, so large models prune on one GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
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


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_to(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
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


@dataclass
class LayerStep:
    """One stop of the walk: the layer, its index and the hidden states entering it."""

    index: int
    layer: nn.Module
    inputs: list[torch.Tensor]
    kwargs: list[dict[str, Any]]


class LayerWalker:
    """Walk the decoder layers in order, feeding each the outputs of the (possibly pruned) last.

    for step in walker:   # step.inputs are the hidden states entering step.layer
        ...               # collect statistics with run_layer(...), prune step.layer in place
    After each step the walker recomputes the layer's outputs with the layer as it is then,
    so layer i + 1 is calibrated on what the already-pruned layers produce; `on_outputs(step,
    outputs)`, if given, sees them (e.g. to compare each layer's input with its output).
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
    ) -> None:
        self.model = model
        self.on_outputs = on_outputs
        self.adapter = adapter or get_adapter(model)
        self.device = (
            torch.device(device) if device is not None else next(model.parameters()).device
        )
        self.progress = progress
        self.captured = capture_layer_inputs(model, input_ids, batch_size, self.adapter)
        #: Outputs of the last layer once the walk has finished.
        self.outputs: list[torch.Tensor] = []

    def __iter__(self) -> Iterator[LayerStep]:
        layers = self.adapter.layers(self.model)
        hidden = self.captured.hidden
        for i in tqdm(range(len(layers)), desc="layers", disable=not self.progress):
            layer = layers[i]
            home = next(layer.parameters()).device
            layer.to(self.device)
            try:
                step = LayerStep(i, layer, hidden, self.captured.kwargs[i])
                yield step
                outputs = run_layer(layer, hidden, step.kwargs, self.device)
                if self.on_outputs is not None:
                    self.on_outputs(step, outputs)
                hidden = outputs
            finally:
                layer.to(home)
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
