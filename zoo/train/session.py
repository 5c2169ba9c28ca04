"""One training session: build the run (data, model, optimizer, schedule, maybe a
checkpoint), train the remaining epochs, write what the run leaves behind.

Hot path per batch, all on the training device: gather a uint8 batch, augment
and normalise it (zoo.train.augment), forward, backward, one fused optimizer
step, one scheduler step. Loss and correct counts accumulate in device tensors
and are read back only every few batches for progress, so on a GPU nothing
waits for the host.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from ..errors import CheckpointError, TrainingError, ZooError, describe
from ..runs import CHECKPOINT_FILE, METRICS_FILE, WEIGHTS_FILE
from ..variants import META_MODEL_ARGS, META_NORMALIZE
from . import checkpoint as ckpt
from . import distributed as dist
from . import records
from .augment import BatchTransform
from .config import CheckpointEvery, EpochMetrics, TrainConfig, TrainResult
from .data import RunData, batches_per_epoch, epoch_plan, fits_on_device, iterate, load_run_data, split_bytes
from .distributed import World
from .evaluate import evaluate, evaluate_shard
from .health import Health, RunFacts, judge, saturating_activations
from .batchlog import BatchLog
from .events import BatchLogged, BatchProgress, Callback, EpochEnded, EpochStarted, Interrupted, Notice, RunStarted
from .sanity import check_first_output
from .optim import current_lr, init_weights, make_average, make_optimizer, make_scheduler
from .settings import RunSettings
from .threads import CpuWatch, auto_threads

PROGRESS_UPDATES = 25  # progress events per epoch (each one reads the loss back from the device)


class StopFlag:
    """Set (by the Ctrl-C handler) to ask the loop to stop after the current batch."""

    requested = False


class Session:
    """One invocation of train(): builds everything, then runs the remaining epochs."""

    def __init__(self, spec, folder: Path, settings: RunSettings, device: torch.device, config: TrainConfig,
                 emit: Callback, stop: StopFlag, saved, threads: int | None = None, world: World = World()):
        """Builds the run without touching global state: the thread count and the global
        RNG (model init, dropout) are set by `run()` and put back when it returns.
        `threads`: CPU threads to train with; None measures the free cores (or takes the
        count saved with the run on resume). `world`: this process's place in a distributed
        run (zoo.train.distributed); every process builds the same session, only rank 0 writes."""
        self.spec, self.folder, self.settings, self.device, self.world = spec, folder, settings, device, world
        self.config, self.emit, self.stop = config, emit, stop
        self.recipe = settings.recipe
        self.seed = settings.seed
        self.normalize = settings.normalize  # the spec given already applies it
        self.model_args = dict(settings.model_args)  # and builds with these
        self.started = time.perf_counter()
        meta = saved[0] if saved else {}
        self.metrics = [EpochMetrics(**m) for m in meta.get("metrics", [])]
        self.epoch_done = meta.get("epoch", 0)  # completed epochs
        self.batch_done = meta.get("batch", 0)  # batches done in the epoch after them
        self.partial = meta.get("partial")  # accumulators of that unfinished epoch
        self.previous_wall = meta.get("wall_time", 0.0)
        self.sessions = meta.get("sessions", 0) + 1
        self.started_at = meta.get("started_at") or records.now()
        self.notices: list[str] = []
        self.init_from = meta.get("init_from")  # the run whose weights this one started from
        self.health: Health | None = None  # the chance-level verdict, once the run has finished
        self.last_eval = None  # the latest test evaluation: the model card's per-class accuracy
        self.last_checkpoint = _where(self.epoch_done, self.batch_done) if saved else None
        self.checkpoint_every = CheckpointEvery.parse(config.checkpoint_every)
        self.saved_epoch, self.saved_at = self.epoch_done, time.monotonic()
        self.log = records.metrics_log(folder)  # metrics.csv: the record, one appended row per epoch
        self.batch_log = None  # batches.csv, with --log-every N

        watch = CpuWatch()  # how busy other processes keep the CPU while the data loads
        self.data = self._load_data()
        if self.data.folder is not None:  # one output per class folder, the folder's own normalisation
            from ..imagefolder.adapt import adapt_spec

            folder_stats = self.normalize == "default"  # --normalize unit/none: that scale, not the folder's
            stats = self.data.folder if folder_stats else spec.eval_transforms
            spec = self.spec = adapt_spec(spec, self.data.class_names, stats.mean, stats.std)
        self.threads = (threads or meta.get("threads") or auto_threads(watch)) if device.type == "cpu" else None
        declared = spec.train_transforms
        plain = dataclasses.replace(declared, crop_padding=0, hflip=False)
        self.train_tf = BatchTransform(declared if settings.augment else plain, device)
        self.plain_tf = BatchTransform(plain, device)  # the cycles before recipe.augment_from_cycle
        self.augmenting = self.train_tf.augments and self.recipe.augments_at_all()  # what run.json records
        self.eval_tf = BatchTransform(spec.eval_transforms, device)
        self.batches = batches_per_epoch(world, len(self.data.train), self.recipe.batch_size)
        # --log-every: given now, else as the run was started (a resumed run goes on logging its batches)
        self.log_every = config.log_every or meta.get("log_every")
        if self.log_every and not world.many:  # batch rows: one process's own sums (single-process runs)
            self.batch_log = BatchLog(folder, self.log_every, self.batches)
        with _own_rng(device):  # model init draws from the global RNG; the caller's is put back after
            torch.manual_seed(self.seed)
            model = spec.build()
            init_weights(model, self.recipe.init, self.recipe.init_std)
            if world.many:  # the same weights everywhere, but each rank its own dropout masks
                torch.manual_seed(self.seed + world.rank)
            self.rng = dist.rng_state(world, device)  # where dropout continues from
        if config.sync_bn and world.many:  # batch statistics over all processes (checked: CUDA only)
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = _place(model, device)  # unwrapped: what is evaluated and saved
        check_first_output(self.model, spec, self.data.train.images, self.eval_tf)  # a broken model, not the lr
        self.optimizer = make_optimizer(self.model, self.recipe, device)
        self.scheduler = make_scheduler(self.optimizer, self.recipe, self.batches)
        self.average = make_average(self.model, self.recipe.ema)  # --ema: what is evaluated and saved
        if saved:
            # another number of processes: another grid of batches, and a schedule laid out anew (_resume_world)
            same_world = meta.get("world_size", 1) == world.size
            steps = self._steps_done(meta.get("batches")) if same_world else None
            self.rng = ckpt.restore(meta, saved[1], self.model, self.optimizer,
                                    self.scheduler if same_world else None, self.average, steps)
            _match_state_layout(self.optimizer)
            self._resume_world(meta, saved[1])
        elif config.init_from is not None:
            self.init_from = str(init_from(self.model, spec, config.init_from))
        self.net = self.model  # what the training step calls: wrapped for several processes in run()

    def _steps_done(self, saved: int | None) -> int | None:
        """The scheduler steps the saved progress stands for (the loop steps once per batch; a
        constant schedule never, so there is nothing to compare); a batch index past the end of
        an epoch is refused here, before it could skip the rest of the epoch. `saved`: the
        batches per epoch the checkpoint records (None before checkpoints recorded them)."""
        if saved is not None and saved != self.batches:  # same processes, yet another grid: the data changed
            raise CheckpointError(f"the training data changed since the checkpoint was saved ({saved} batches per "
                                  f"epoch then, {self.batches} now: files added to or removed from the dataset?); "
                                  "put it back as it was to resume, or start over with --force")
        if self.batch_done >= self.batches:
            raise ckpt.damaged(f"it is {self.batch_done} batches into epoch {self.epoch_done + 1}, which has "
                               f"{self.batches}")
        if self.recipe.schedule == "constant":
            return None
        return self.epoch_done * self.batches + self.batch_done

    def _resume_world(self, meta: dict, tensors: dict) -> None:
        """Same number of processes: each continues with its own saved RNG. Another number:
        the batches per epoch differ, so the run goes on from its last epoch boundary."""
        saved_size = meta.get("world_size", 1)
        if saved_size == self.world.size:
            if self.world.many:
                self.rng = _rank_rng(meta, tensors, self.world)
            return
        self.notify(f"the run was saved by {saved_size} process{'es' if saved_size > 1 else ''} and continues "
                    f"with {self.world.size}: from the start of epoch {self.epoch_done + 1}, with fresh random "
                    "streams (the result differs in detail from an uninterrupted run)")
        self.batch_done, self.partial = 0, None
        self.scheduler = make_scheduler(self.optimizer, self.recipe, self.batches)
        for _ in range(self.epoch_done * self.batches):  # to the epoch boundary on the new grid
            self.scheduler.step()
        with _own_rng(self.device):
            torch.manual_seed(self.seed * 1_000_003 + self.epoch_done * 1009 + self.world.rank)
            self.rng = dist.rng_state(self.world, self.device)

    def _load_data(self) -> RunData:
        s = self.settings
        data = load_run_data(self.spec, s.dataset, self.config.data_dir, self.config.offline, s.limit, self.seed,
                             s.holdout, s.skip_bad, self.emit)
        for message in data.notices:
            self.notify(message)
        want = self.config.data_on_device
        self.on_device = fits_on_device(split_bytes(data.train, data.test), self.device) if want is None else want
        if self.on_device:
            data.train, data.test = data.train.to(self.device), data.test.to(self.device)
        return data

    def notify(self, message: str) -> None:
        self.notices.append(message)
        self.emit(Notice(message))

    # -- the loop -------------------------------------------------------------------------------

    def run(self, wipe: bool = False) -> TrainResult:
        """Train the remaining epochs; `wipe` first removes the old run this one replaces (--force).
        The session's thread count and RNG state hold while it runs; the caller's are restored after."""
        with _own_rng(self.device), _own_threads(self.threads):
            dist.set_rng_state(self.world, self.rng, self.device)
            # DistributedDataParallel's construction is a collective (rank 0's parameters go to all):
            # not in __init__, where a process that failed to build its session (rank 0 alone checks
            # the run folder) would leave the others waiting in it until the timeout
            self.net = dist.wrap(self.world, self.model, self.device)
            return self._run(wipe)

    def _run(self, wipe: bool) -> TrainResult:
        r = self.recipe
        self.emit(RunStarted(
            model=self.spec.name, dataset=self.data.name, variant=self.data.variant, device=str(self.device),
            folder=self.folder, start_epoch=self.epoch_done + 1, epochs=r.epochs,
            train_samples=len(self.data.train), test_samples=len(self.data.test), batches=self.batches,
            hparams=asdict(r), resumed=self.sessions > 1, data_on_device=self.on_device,
            processes=self.world.size, backend=self.world.backend,
            options={"normalize": self.normalize, "model_args": dict(self.model_args),
                     "augment": self.augmenting, "log_every": self.log_every}))
        if self.epoch_done >= r.epochs:
            more = " (pass --epochs N to train more: a constant schedule goes on)" if r.schedule == "constant" else ""
            self.notify(f"the run in {self.folder} already finished its {r.epochs} epochs; nothing to resume{more}")
            self.health = self._judge()
            result = self._result("finished")
            result.weights = self.folder / WEIGHTS_FILE if (self.folder / WEIGHTS_FILE).is_file() else None
            return result
        if wipe and self.world.main:
            records.clear_run(self.folder)
        if self.world.main:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.log.start([m.as_dict() for m in self.metrics])  # a resumed run drops rows past its checkpoint
            if self.batch_log is not None:
                self.batch_log.start(self.epoch_done, self.batch_done)
        try:
            for epoch in range(self.epoch_done + 1, r.epochs + 1):
                finished = self._epoch(epoch)
                if not finished or self._stop_agreed():
                    return self._interrupted(epoch if not finished else epoch + 1)
            return self._finish()
        except Exception as exc:
            if self.world.main:
                self._failed(exc)
            raise

    def _failed(self, exc: Exception) -> None:
        """Leave a run.json saying the run failed and why (never a folder with nothing in it)."""
        info = self._info("failed") | {"error": describe(exc)}
        try:
            records.write_run_info(self.folder, info)
        except ZooError:
            pass  # the folder itself is the problem; the error being raised says so

    def _epoch(self, epoch: int) -> bool:
        """Train one epoch (or its rest), evaluate, save. False when stopped by Ctrl-C."""
        start = self.batch_done
        model, opt, sched, r = self.model, self.optimizer, self.scheduler, self.recipe
        transform = self.train_tf if r.augments_in(epoch) else self.plain_tf
        order, params = epoch_plan(len(self.data.train), epoch, self.seed, transform)
        order, params = dist.shard_plan(self.world, order, params)  # this process's share (all of it alone)
        params = params.to(self.device)  # one transfer per epoch
        order = order.to(self.device) if self.on_device else order
        acc = Accumulators(self.device, self.partial if start else None, self.world)
        self.partial = None
        if self.batch_log is not None:
            self.batch_log.start_epoch(*acc.totals())
        self.emit(EpochStarted(epoch, r.epochs, self.batches, start, current_lr(opt), model))
        every = max(1, self.batches // PROGRESS_UPDATES)
        stepped = r.schedule != "constant"  # a constant schedule's step only costs time
        t0 = time.perf_counter()
        step_lr = current_lr(opt)  # the lr the latest step used (after it the schedule has moved on)
        model.train()
        for i, x, y, aug in iterate(self.data.train, order, params, r.batch_size, self.batches, start,
                                    self.device, self.on_device):
            logits = self.net(transform(x, aug))  # (b, K)
            loss = F.cross_entropy(logits, y, label_smoothing=r.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if self.average is not None:
                self.average.update_parameters(model)
            if stepped:
                step_lr = current_lr(opt)
                sched.step()
            acc.add(loss.detach(), logits.detach(), y)
            done = i + 1
            read = done % every == 0 or done == self.batches
            if read:
                self._progress(epoch, done, acc, t0, step_lr)
            if self.batch_log is not None and self.batch_log.due(done):
                self._log_batches(epoch, done, acc, step_lr)
            if self._stop_agreed(read) and done < self.batches:
                if self.batch_log is not None:
                    self.batch_log.flush()
                self._save(epoch - 1, done, acc.state(time.perf_counter() - t0))
                self.batch_done = done
                return False
        train_loss, train_acc = self._check_finite(epoch, self.batches, acc)
        dist.broadcast_buffers(self.world, model)  # one set of BatchNorm statistics to evaluate and save
        if self.average is not None:
            dist.broadcast_buffers(self.world, self.evaluated)
        test = evaluate_shard(self.world, self.evaluated, self.data.test.images, self.data.test.labels, self.spec,
                              self.device, self.config.eval_batch_size, self.eval_tf)
        self.last_eval = test
        if not math.isfinite(test.loss):  # the last steps can break the weights after the last loss was fine
            raise self._diverged(f"the test loss after epoch {epoch} became {test.loss}")
        seconds = acc.seconds + time.perf_counter() - t0
        m = EpochMetrics(epoch, train_loss, train_acc, test.loss, test.accuracy, step_lr, seconds)
        self.metrics.append(m)
        self.batch_done = 0
        if self.world.main:
            self.log.append([m.as_dict()])
        if self.batch_log is not None:
            self.batch_log.flush()
        path = None
        since = (epoch - self.saved_epoch, time.monotonic() - self.saved_at)
        due = epoch == r.epochs or self.stop.requested or self.checkpoint_every.due(*since)
        if dist.any_(self.world, due, self.device):  # a save is a collective: the processes agree on it
            path = self._save(epoch, 0, None)
            if self.world.main:
                records.write_run_info(self.folder, self._info("running"))
        self.emit(EpochEnded(m, r.epochs, path))
        return True

    def _progress(self, epoch: int, done: int, acc: "Accumulators", t0: float, lr: float) -> None:
        loss, accuracy = self._check_finite(epoch, done, acc)  # the one host read of this stretch
        elapsed = max(time.perf_counter() - t0, 1e-9)
        samples = min(done * self.recipe.batch_size * self.world.size, len(self.data.train))
        self.emit(BatchProgress(epoch, done, self.batches, samples, loss, accuracy,
                                acc.session_samples * self.world.size / elapsed, lr))

    def _log_batches(self, epoch: int, done: int, acc: "Accumulators", lr: float) -> None:
        self._check_finite(epoch, done, acc)
        row = self.batch_log.add(epoch, done, *acc.totals(), lr)
        if row is not None:
            self.emit(BatchLogged(row, self.batches))

    def _check_finite(self, epoch: int, done: int, acc: "Accumulators") -> tuple[float, float]:
        loss, accuracy = acc.read()  # over all processes
        if math.isfinite(loss):
            return loss, accuracy
        raise self._diverged(f"the training loss became {loss} in epoch {epoch} (by batch {done}/{self.batches})")

    def _diverged(self, what: str) -> TrainingError:
        kept = (f"the last good checkpoint ({self.last_checkpoint}) is kept in {self.folder}"
                if self.last_checkpoint else "no checkpoint was written")
        return TrainingError(
            f"{what}: training diverged, the learning rate ({self.recipe.lr:g}, {self.recipe.optimizer}) "
            f"is probably too high; {kept}. Start over with a lower --lr and --force")

    def _save(self, epoch: int, batch: int, partial: dict | None) -> Path:
        """Checkpoint after `epoch` complete epochs and `batch` batches of the next one."""
        state = {
            "model": self.spec.name, "epoch": epoch, "batch": batch, "partial": partial,
            "epochs": self.recipe.epochs, "settings": self.settings.as_dict(),
            "metrics": [m.as_dict() for m in self.metrics], "wall_time": self.wall_time,
            "sessions": self.sessions, "started_at": self.started_at, "init_from": self.init_from, "threads": self.threads,
            "log_every": self.log_every, "batches": self.batches,
        }
        rank_rng = dist.gather_rng(self.world, self.device)  # a collective: every process takes part
        path = self.folder / CHECKPOINT_FILE
        if self.world.main:
            if self.world.many:
                state |= {"world_size": self.world.size, "rank_rng": rank_rng}
            path = ckpt.save_checkpoint(self.folder, self.model, self.optimizer, self.scheduler, state, self.average)
        self.last_checkpoint = _where(epoch, batch)
        self.saved_epoch, self.saved_at = epoch, time.monotonic()
        return path

    @property
    def evaluated(self) -> torch.nn.Module:
        """The weights evaluated, saved and exported: the moving average with --ema, else the model."""
        return self.average.module if self.average is not None else self.model

    @property
    def wall_time(self) -> float:
        return self.previous_wall + time.perf_counter() - self.started

    # -- endings --------------------------------------------------------------------------------

    def _interrupted(self, epoch: int) -> TrainResult:
        """Stopped by Ctrl-C in `epoch` (its first `batch_done` batches are done, and saved)."""
        self.epoch_done = epoch - 1
        if self.batch_done == 0 and self.saved_epoch != self.epoch_done:  # stopped between checkpoints
            self._save(self.epoch_done, 0, None)
        if self.world.main:
            records.write_run_info(self.folder, self._info("interrupted"))
        path = self.folder / CHECKPOINT_FILE
        self.emit(Interrupted(epoch, self.batch_done, path))
        return self._result("interrupted")

    def _finish(self) -> TrainResult:
        self.epoch_done = self.recipe.epochs
        if not self.world.main:
            return self._result("finished")
        self.health = self._judge()
        weights = ckpt.save_weights(self.folder / WEIGHTS_FILE, self.evaluated, {
            "format": "pt", "model": self.spec.name, "dataset": self.data.variant,
            META_NORMALIZE: self.normalize, META_MODEL_ARGS: json.dumps(self.model_args), **self._fitted_meta()})
        info = self._info("finished")
        records.write_run_info(self.folder, info)
        result = self._result("finished")
        try:
            if records.write_model_card(self.folder, info, self._per_class()) is None:
                self.notify(f"{self.folder}/README.md is not a zoo model card, so it was left as it is")
        except Exception as exc:  # a card must never cost the user a finished run
            self.notify(f"could not write the model card: {exc}")
        result.weights = weights
        return result

    def _judge(self) -> Health | None:
        if not self.metrics:
            return None
        return judge(RunFacts(
            model=self.spec.name, num_classes=len(self.data.class_names), test_samples=len(self.data.test),
            train_samples=len(self.data.train), batches_per_epoch=self.batches, recipe=self.recipe,
            metrics=self.metrics, saturating=saturating_activations(self.model)))

    def _per_class(self) -> list[tuple[str, int, float]]:
        """(class, test images, accuracy) from the final evaluation (made now when resuming a finished run)."""
        test = self.last_eval or evaluate(self.evaluated, self.data.test.images, self.data.test.labels, self.spec,
                                          self.device, self.config.eval_batch_size, self.eval_tf)
        counts = test.confusion.sum(dim=1).tolist()
        return [(name, int(n), float(a)) for name, n, a in zip(self.data.class_names, counts,
                                                                test.per_class_accuracy)]

    def _fitted(self) -> dict | None:
        """What evaluate, export and predict need to rebuild a model fitted to a folder."""
        folder = self.data.folder
        if folder is None:
            return None
        scale = self.spec.eval_transforms  # the folder's statistics, or the --normalize scale
        return {"class_names": list(self.data.class_names), "mean": list(scale.mean), "std": list(scale.std)}

    def _fitted_meta(self) -> dict[str, str]:
        fitted = self._fitted()
        return {"zoo.fitted": json.dumps(fitted)} if fitted else {}

    def _info(self, status: str) -> dict[str, Any]:
        last = self.metrics[-1] if self.metrics else None
        best = max(self.metrics, key=lambda m: m.test_acc) if self.metrics else None
        return {
            "model": self.spec.name, "summary": self.spec.summary,
            "plugin": self.spec.plugin, "plugin_version": self.spec.plugin_version,
            "status": status,
            "dataset": self.data.name, "dataset_variant": self.data.variant, "dataset_source": self.data.source,
            "class_names": list(self.data.class_names),
            **({"fitted": self._fitted(), "image_folder": self.data.folder.record()} if self.data.folder else {}),
            "train_samples": len(self.data.train), "test_samples": len(self.data.test),
            "limit": self.settings.limit, "augment": self.augmenting,
            "normalize": self.normalize, "model_args": dict(self.model_args), "init_from": self.init_from,
            "log_every": self.log_every,
            "hyperparameters": asdict(self.recipe),
            "seed": self.seed,
            "device": str(self.device), "threads": self.threads,
            "processes": self._processes(),
            "data_on_device": self.on_device,
            "versions": records.versions(),
            "epochs_completed": len(self.metrics),
            "metrics_file": METRICS_FILE,  # the per-epoch record; run.json keeps the summary
            "last_epoch": last.as_dict() if last else None,
            "test_accuracy": last.test_acc if last else None,
            "test_loss": last.test_loss if last else None,
            "best_test_accuracy": best.test_acc if best else None,
            "best_epoch": best.epoch if best else None,
            "wall_time_seconds": round(self.wall_time, 3),
            "sessions": self.sessions,
            "started_at": self.started_at,
            "updated_at": records.now(),
            "weights": WEIGHTS_FILE if status == "finished" else None,
            "health": self.health.as_dict() if self.health else None,
        }

    def _processes(self) -> dict[str, Any]:
        """How the run was spread: --batch-size is per process, the global batch is the sum."""
        w = self.world
        return {"world_size": w.size, "backend": w.backend, "batch_size_per_process": self.recipe.batch_size,
                "global_batch_size": self.recipe.batch_size * w.size, "launch_command": self.config.launch_command}

    def _stop_agreed(self, synced: bool = True) -> bool:
        """Whether to stop now: asked on any process (SIGINT or SIGTERM), agreed by all, so
        every process stops after the same step. On GPUs the vote (a host sync) is taken
        only where the loop syncs anyway (`synced`: the progress reads, ~25 an epoch); on
        the CPU after every step."""
        if self.world.many and self.device.type == "cuda" and not synced:
            return False
        return dist.any_(self.world, self.stop.requested, self.device)

    def _result(self, status: str) -> TrainResult:
        last = self.metrics[-1] if self.metrics else None
        return TrainResult(
            model=self.spec.name, folder=self.folder, status=status, epoch=len(self.metrics),
            epochs=self.recipe.epochs, batch=self.batch_done if status == "interrupted" else 0,
            metrics=list(self.metrics), test_accuracy=last.test_acc if last else None,
            test_loss=last.test_loss if last else None, wall_time=self.wall_time, device=str(self.device),
            dataset=self.data.name, dataset_variant=self.data.variant,
            checkpoint=self.folder / CHECKPOINT_FILE, notices=list(self.notices), info=self._info(status),
            health=self.health,
        )


class Accumulators:
    """Running sums of one epoch, kept on the device (no host sync per batch). With
    several processes each keeps its own and `read`/`state` sum them over all; a saved
    state is the total, so on resume rank 0 takes it up and the others start at zero."""

    def __init__(self, device: torch.device, saved: dict | None, world: World = World()):
        self.world = world
        saved = saved or {}
        if not world.main:
            saved = {"seconds": saved.get("seconds", 0.0)}
        self.loss_sum = torch.tensor(saved.get("loss_sum", 0.0), dtype=torch.float64, device=device)
        self.correct = torch.tensor(saved.get("correct", 0), dtype=torch.int64, device=device)
        self.samples = saved.get("samples", 0)
        self.seconds = saved.get("seconds", 0.0)  # spent on this epoch in earlier sessions
        self.session_samples = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        b = len(y)
        self.loss_sum += loss.double() * b
        self.correct += (logits.argmax(1) == y).sum()
        self.samples += b
        self.session_samples += b

    def totals(self) -> tuple[float, int, int]:
        """(loss sum, correct, samples) over all processes."""
        if not self.world.many:
            return float(self.loss_sum), int(self.correct), self.samples
        t = torch.stack([self.loss_sum, self.correct.double(),
                         torch.tensor(float(self.samples), dtype=torch.float64, device=self.loss_sum.device)])
        loss_sum, correct, samples = dist.sum_(self.world, t).tolist()
        return loss_sum, int(correct), int(samples)

    def read(self) -> tuple[float, float]:
        loss_sum, correct, samples = self.totals()
        n = max(samples, 1)
        return loss_sum / n, correct / n

    def state(self, seconds: float) -> dict:
        loss_sum, correct, samples = self.totals()
        return {"loss_sum": loss_sum, "correct": correct, "samples": samples, "seconds": self.seconds + seconds}


@contextlib.contextmanager
def _own_rng(device: torch.device) -> Iterator[None]:
    """The global torch RNG (CPU, and the device's when CUDA) as it was, after the block."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield


@contextlib.contextmanager
def _own_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` for the block (None: left alone)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _place(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """On the CPU, convolutions run markedly faster in channels-last layout (oneDNN's
    native one); the values are the same, and saved weights are made contiguous."""
    model = model.to(device)
    if device.type == "cpu" and any(p.dim() == 4 for p in model.parameters()):
        model = model.to(memory_format=torch.channels_last)
    return model


def init_from(model: torch.nn.Module, spec, source) -> Path:
    """--init-from RUN: start from the weights of another run (a folder or its
    model.safetensors) instead of a fresh initialisation; they must fit this model."""
    from ..errors import CheckpointError
    from ..runs import load_state

    path = Path(source)
    path = path / WEIGHTS_FILE if path.is_dir() else path
    state = load_state(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc))
        raise CheckpointError(f"--init-from {source}: those weights do not fit {spec.name} as this run builds it "
                              f"({first}); use the same --model-arg values as that run") from exc
    return path


def _match_state_layout(optimizer: torch.optim.Optimizer) -> None:
    """Optimizer state restored from a checkpoint is in the standard layout; give each
    tensor its parameter's layout (fused kernels walk both with the same strides)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    optimizer.state[p][key] = torch.empty_like(p).copy_(value)


def _rank_rng(meta: dict, tensors: dict, world: World) -> dict[str, torch.Tensor]:
    """This process's RNG state, saved by the same number of processes (checked: the
    header's list may have been edited)."""
    try:
        states = ckpt.unpack(meta.get("rank_rng"), tensors)
        if not isinstance(states, list) or len(states) != world.size:
            raise ValueError(f"{world.size} RNG states expected, found {len(states) if isinstance(states, list) else 0}")
        state = states[world.rank]
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"the checkpoint's per-process RNG states are damaged ({describe(exc)}); "
                              "start over with --force") from exc
    ckpt.check_rng(state, f"the RNG state of process {world.rank}")
    return state


def _where(epoch: int, batch: int) -> str:
    return f"epoch {epoch + 1}, batch {batch}" if batch else f"end of epoch {epoch}"
