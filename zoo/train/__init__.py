"""zoo.train: the training loop, evaluation, checkpoints and the learning-rate sweep (sweep.py).

    from zoo.train import TrainConfig, train, evaluate
    result = train(TrainConfig("lenet5", epochs=2, limit=512), on_event=print)
    result.test_accuracy, result.folder          # runs/lenet5/
    ev = evaluate(model, images_uint8, labels, spec)   # EvalResult: accuracy, loss, confusion, ...

train() never prints and never draws: it emits events (zoo.train.events) to `on_event`
and records data files (run.json, metrics.csv, weights); zoo.viz draws from them.
"""
from __future__ import annotations

from .augment import AugmentParams, BatchTransform
from .config import EpochMetrics, TrainConfig, TrainResult
from .evaluate import EvalResult, evaluate
from .events import BatchLogged, BatchProgress, EpochEnded, EpochStarted, Interrupted, Notice, RunStarted
from .loop import pick_device, train
from .settings import RunSettings

__all__ = [
    "TrainConfig", "RunSettings", "TrainResult", "EpochMetrics", "train", "evaluate", "EvalResult", "pick_device",
    "BatchTransform", "AugmentParams",
    "Notice", "RunStarted", "EpochStarted", "BatchProgress", "BatchLogged", "EpochEnded", "Interrupted",
]
