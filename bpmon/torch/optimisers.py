"""Which optimisers step the watched rows, found by global step hooks: the first one seen (or
the one passed as ``optimizer=``) is the *primary*, whose steps count the updates; every other
optimiser that steps watched parameters is hooked too, so that the rows it steps get their
update ratio from its own step. A row no hooked optimiser steps has none (NaN)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import torch
from torch.utils.hooks import RemovableHandle

from bpmon.torch.layers import Layer


class Stepped(Protocol):
    """What the hooks tell the monitor (:class:`bpmon.torch.updates.Updates` has it): a
    protocol here, so that this module needs nothing of the monitor's."""

    def before_step(
        self, opt: torch.optim.Optimizer, rows: Sequence[int], primary: bool, late: bool
    ) -> None: ...

    def after_step(self, rows: Sequence[int], primary: bool, skipped: bool) -> None: ...


class Optimisers:
    def __init__(self, layers: Sequence[Layer], primary: torch.optim.Optimizer | None) -> None:
        self._row_of = {
            id(p): i for i, row in enumerate(layers) for p in (*row.weights, *row.biases)
        }
        # By id, with a weak reference that tells a reused id apart: a lookup on every step
        # without making a weak reference each time (WeakKeyDictionary.get does).
        self._rows: dict[int, tuple[weakref.ref[torch.optim.Optimizer], list[int]]] = {}
        self._primary: weakref.ref[torch.optim.Optimizer] | None = None
        # Secondary optimisers that step after the primary in each iteration (a secondary is
        # first seen after the primary's first step, so it steps after it, unless optimizer=
        # named one that steps second), and those of them that stepped since its last step.
        self._late: set[int] = set()
        self._stepped: set[int] = set()
        self._phase = "none"  # the primary's last hook: "none", "pre" or "post"
        self._known: weakref.WeakSet[torch.optim.Optimizer] = weakref.WeakSet()
        self.stepping = False  # set by the primary's pre-hook, for the scaler's skipped steps
        if primary is not None:
            self._primary = weakref.ref(primary)

    def register(self, monitor: Stepped) -> Iterator[RemovableHandle]:
        from torch.optim.optimizer import (
            register_optimizer_step_post_hook,
            register_optimizer_step_pre_hook,
        )

        ref = weakref.ref(monitor)

        def pre(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            mon = ref()
            rows = self.rows_of(opt)
            if mon is None or not rows:
                return
            if self._primary is None:
                self._primary = weakref.ref(opt)
            primary = self.is_primary(opt)
            if primary:
                self.stepping = True
                self._phase = "pre"
            elif opt not in self._known:
                self._known.add(opt)
                if self._phase == "post":
                    self._late.add(id(opt))
            mon.before_step(opt, rows, primary, id(opt) in self._late)

        def post(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            mon = ref()
            rows = self.rows_of(opt)
            if mon is None or not rows:
                return
            primary = self.is_primary(opt)
            if primary:
                self._phase = "post"
                self._stepped = set()
            else:
                self._stepped.add(id(opt))
            mon.after_step(rows, primary, skipped=False)

        yield register_optimizer_step_pre_hook(pre)
        yield register_optimizer_step_post_hook(post)

    def rows_of(self, opt: torch.optim.Optimizer) -> list[int]:
        """The rows whose weights ``opt`` steps; decided once per optimiser."""
        entry = self._rows.get(id(opt))
        if entry is not None and entry[0]() is opt:
            return entry[1]
        ids = {id(p) for g in opt.param_groups for p in g["params"]}
        rows = sorted({self._row_of[i] for i in ids if i in self._row_of})
        self._rows[id(opt)] = (weakref.ref(opt), rows)
        return rows

    def is_primary(self, opt: torch.optim.Optimizer) -> bool:
        return self._primary is not None and self._primary() is opt

    def primary_name(self) -> str:
        opt = self._primary() if self._primary is not None else None
        return type(opt).__name__ if opt is not None else "an optimizer"

    def secondaries(self) -> list[torch.optim.Optimizer]:
        live = [(ref(), rows) for ref, rows in self._rows.values()]
        return [o for o, rows in live if o is not None and rows and not self.is_primary(o)]

    def all_stepped(self) -> bool:
        """Whether every secondary that steps after the primary has stepped since it did."""
        return self._late <= self._stepped

    def lrs(self) -> list[object]:
        """The lr of every param group, the primary's first, as they are now (before the step):
        floats, or tensors copied (a scheduler may change them in place)."""
        opt = self._primary() if self._primary is not None else None
        out: list[object] = []
        for o in ([opt] if opt is not None else []) + self.secondaries():
            for g in o.param_groups:
                lr = g.get("lr")
                out.append(lr.detach().clone() if isinstance(lr, torch.Tensor) else lr)
        return out

    def watches(self, params: Sequence[torch.Tensor]) -> bool:
        return any(id(p) in self._row_of for p in params)

    def scaled(self, scaler: torch.amp.GradScaler | None, opt: object = None) -> bool:
        """Whether the gradients are still multiplied by the scaler's scale. ``scaler.step``
        unscales them before calling ``optimizer.step`` (state UNSCALED), as does an earlier
        ``scaler.unscale_``; they are still scaled when the optimiser unscales them itself
        (fused optimisers get ``grad_scale``) or when ``optimizer.step()`` is called without the
        scaler. GradScaler's per-optimiser state is private API, read defensively: without it
        the gradients are taken as unscaled."""
        if scaler is None or not scaler.is_enabled() or scaler._get_scale_async() is None:
            return False
        if opt is None and self._primary is not None:
            opt = self._primary()
        try:
            from torch.amp.grad_scaler import OptState

            states = scaler._per_optimizer_states
            if opt is None:
                return not any(s.get("stage") is OptState.UNSCALED for s in states.values())
            state = states.get(id(opt))
        except (ImportError, AttributeError):
            return False
        return state is None or state.get("stage") is OptState.READY


def wrap_scaler(
    scaler: torch.amp.GradScaler,
    opts: Optimisers,
    on_skipped: Callable[[torch.optim.Optimizer], None],
) -> None:
    """Wrap this scaler's ``step`` (on the instance; the monitor's close deletes the wrapper):
    a call that returns without the primary optimiser's pre-hook having run is a step the
    scaler skipped for inf/NaN gradients, still an update of the user's loop."""
    original = scaler.step

    def step(optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
        opts.stepping = False
        result = original(optimizer, *args, **kwargs)
        if not opts.stepping and opts.is_primary(optimizer):
            on_skipped(optimizer)
        opts.stepping = False
        return result

    setattr(scaler, "step", step)  # noqa: B010 - mypy refuses assigning to a method
