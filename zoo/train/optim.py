"""Weight initialisation, optimizer and learning-rate schedule from a `zoo.Recipe`.

Every schedule is stepped once per batch, so the learning rate is a smooth
function of progress and a run resumed mid-epoch continues on the same curve.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from ..spec import Recipe


def init_weights(model: nn.Module, scheme: str, std: float = 0.01) -> None:
    """"default" keeps what the layers' constructors drew; "kaiming" (He, for ReLU
    nets), "xavier" (Glorot, for sigmoid/tanh nets) and "normal" (N(0, std), as many
    tutorials write it) redraw conv and linear weights from the global torch RNG
    (seeded by the caller) and zero their biases."""
    if scheme == "default":
        return
    for module in model.modules():
        if not isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            continue
        if scheme == "kaiming":
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        elif scheme == "xavier":
            nn.init.xavier_uniform_(module.weight)
        elif scheme == "normal":
            nn.init.normal_(module.weight, mean=0.0, std=std)
        else:
            raise ValueError(f"unknown init scheme {scheme!r}")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def make_optimizer(model: nn.Module, recipe: Recipe, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    # The fused kernels update every parameter in one call: far fewer small ops per
    # step, which is what small models on a CPU are bound by.
    kw = {"fused": True} if device.type in ("cpu", "cuda") else {}
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                               weight_decay=recipe.weight_decay, **kw)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay, **kw)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay, **kw)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


ONECYCLE_DIV = 25.0  # onecycle starts at lr / 25 (torch's default div_factor)


def _constant(step: int) -> float:
    return 1.0


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    """constant; onecycle (from lr/25 up to lr over the first `warmup_fraction` of the
    steps, then cosine down to `final_lr_fraction` * lr); cosine (from lr down to
    `final_lr_fraction` * lr); step (x0.1 after each third of the epochs). With
    `recipe.cycles` > 1, onecycle and cosine run once per cycle (Recipe.cycle_ends),
    each cycle's peak `cycle_decay` times the one before."""
    total = recipe.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler
    if recipe.schedule == "constant":
        return sched.LambdaLR(optimizer, _constant)
    if recipe.schedule in ("onecycle", "cosine") and len(recipe.cycle_ends()) > 1:
        return CycledSchedule(optimizer, recipe, steps_per_epoch)
    if recipe.schedule == "onecycle":
        return sched.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=total, pct_start=recipe.warmup_fraction,
                                div_factor=ONECYCLE_DIV, final_div_factor=1 / (ONECYCLE_DIV * recipe.final_lr_fraction))
    if recipe.schedule == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=total, eta_min=recipe.lr * recipe.final_lr_fraction)
    if recipe.schedule == "step":
        return sched.StepLR(optimizer, step_size=max(1, recipe.epochs // 3) * steps_per_epoch, gamma=0.1)
    raise ValueError(f"unknown schedule {recipe.schedule!r}")


class CycledSchedule(torch.optim.lr_scheduler.LRScheduler):
    """onecycle or cosine once per cycle of a recipe with `cycles` > 1 (Recipe.cycle_ends),
    each cycle's peak `cycle_decay` times the one before. Within a cycle the curves are
    torch's own: OneCycleLR's lr and, as OneCycleLR does, momentum (Adam's beta1) from
    0.95 down to 0.85 at the peak and back, computed as OneCycleLR computes them, so the
    first cycle of a cycled onecycle run trains bit for bit as a run of that many epochs
    would; CosineAnnealingLR's curve in its closed form (torch's own is recursive, so the
    two differ in the last digits).
    Its state (the cycles' first steps and lengths, the knobs) is plain data, as a
    checkpoint keeps it."""

    MOMENTUM = (0.85, 0.95)  # OneCycleLR's base_momentum and max_momentum

    def __init__(self, optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
        self.bounds, start = [], 0
        for end in recipe.cycle_ends():
            self.bounds.append([start * steps_per_epoch, (end - start) * steps_per_epoch])
            start = end
        self.onecycle = recipe.schedule == "onecycle"
        self.decay, self.warmup, self.final = recipe.cycle_decay, recipe.warmup_fraction, recipe.final_lr_fraction
        self.use_betas = "betas" in optimizer.defaults
        self.cycle_momentum = self.onecycle and (self.use_betas or "momentum" in optimizer.defaults)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        cycle = next((i for i, (first, n) in enumerate(self.bounds) if self.last_epoch < first + n),
                     len(self.bounds) - 1)
        first, n = self.bounds[cycle]
        t = min(self.last_epoch - first, n)  # one step past the last: the final lr, not a new climb
        lrs, momentum = [], None
        for base in self.base_lrs:
            peak = base * self.decay ** cycle
            if self.onecycle:
                lr, momentum = _onecycle(t, n, peak, self.warmup, self.final)
            else:
                lr = _annealed(peak, peak * self.final, t / n)
            lrs.append(lr)
        for group in self.optimizer.param_groups:
            if self.cycle_momentum and self.use_betas:
                group["betas"] = (momentum, *group["betas"][1:])
            elif self.cycle_momentum:
                group["momentum"] = momentum
        return lrs


def _annealed(start: float, end: float, pct: float) -> float:
    """torch's _annealing_cos: from start to end along half a cosine as pct goes 0 -> 1."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _onecycle(t: int, n: int, peak: float, warmup: float, final: float) -> tuple[float, float]:
    """OneCycleLR at step t of n, its two cosine phases computed as torch computes them (the
    same values bit for bit): (lr, momentum)."""
    low, high = CycledSchedule.MOMENTUM
    initial = peak / ONECYCLE_DIV
    end = float(warmup * n) - 1  # the last warm-up step, as OneCycleLR places it (below 0 in a tiny cycle)
    if t <= end or (end == 0 and t == 0):  # torch divides by zero at end == 0; its first step is the start
        pct = t / end if end else 0.0
        return _annealed(initial, peak, pct), _annealed(high, low, pct)
    pct = min((t - end) / (n - 1 - end), 1.0)  # n - 1 - end = n (1 - warmup) > 0
    return _annealed(peak, initial / (1 / (ONECYCLE_DIV * final)), pct), _annealed(low, high, pct)


def make_average(model: nn.Module, decay: float):
    """The exponential moving average of the model's weights (and buffers) that
    `recipe.ema` asks for, or None for 0. Evaluating the average rather than the last
    step's weights smooths out the noise of a high learning rate: on Fashion-MNIST
    lenet5 reached 90% one epoch sooner with 0.99 (plugins/lenet.py)."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel

    return AveragedModel(model, multi_avg_fn=functools.partial(_ema_update, decay=decay), use_buffers=True)


def _ema_update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor,
                decay: float) -> None:
    """average <- d * average + (1 - d) * weights, with the decay warmed up as in
    TensorFlow's ExponentialMovingAverage (num_updates): d = min(decay, (1 + n) / (10 + n)). Without it a short run (128 steps on the bundled
    sample) would average over most of its own training and end below its last weights."""
    if averaged and averaged[0].is_floating_point():  # torch groups the tensors by dtype: all or none
        # n arrives on the weights' device (AveragedModel copies its CPU step count there for
        # every update: on a GPU a small copy that waits for the step); d is worked out there
        n = num_averaged.to(averaged[0].device, torch.float32)
        d = torch.clamp((1 + n) / (10 + n), max=decay)
        torch._foreach_mul_(averaged, d)
        torch._foreach_add_(averaged, torch._foreach_mul(current, 1 - d))
        return
    for a, c in zip(averaged, current):  # counters (BatchNorm's num_batches_tracked): the latest
        a.copy_(c)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])
