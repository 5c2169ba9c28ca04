"""Pictures: training curves, feature maps, mistakes, confusion matrix, lr sweep.

Every PNG is opened with Pillow and checked for its size, its mode and that it is
not blank. Weights come from a freshly built, seeded model saved as safetensors
in a temporary runs/ folder, so no test depends on a full training run.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

import zoo
from zoo.cli.main import app
from zoo.errors import CheckpointError, UsageError
from zoo.runs import METRICS_COLUMNS

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def assert_picture(path: Path, size: tuple[int, int] | None = None, mode: str = "RGB", min_colors: int = 20):
    """A PNG a person can look at: the expected size and mode, and something drawn in it."""
    assert path.is_file(), f"{path} was not written"
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.mode == mode
        if size is not None:
            assert img.size == size
        gray = np.asarray(img.convert("L"))
    assert gray.std() > 10, f"{path} looks blank (pixel std {gray.std():.1f})"
    levels = len(np.unique(gray))
    assert levels >= min_colors, f"{path} has only {levels} gray levels"


def write_metrics(folder: Path, epochs: int = 3, with_test: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(METRICS_COLUMNS)
        for e in range(1, epochs + 1):
            loss = 2.3 * math.exp(-e / 2)
            test = [loss * 1.1, 1 - loss / 2.5] if with_test else ["", ""]
            writer.writerow([e, loss, 1 - loss / 2.4, *test, 0.003 * (1 - e / (epochs + 1)), 1.5])
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh checkout's view: runs/ resolves inside tmp_path."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def save_weights(name: str, folder: Path) -> Path:
    torch.manual_seed(0)
    model = zoo.create_model(name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture
def lenet_run(workdir) -> Path:
    folder = workdir / "runs" / "lenet5"
    save_weights("lenet5", folder)
    write_metrics(folder)
    return folder


# --- training curves ---------------------------------------------------------------------

def test_write_curves_draws_metrics_csv(tmp_path):
    from zoo.viz.curves import write_curves

    write_metrics(tmp_path, epochs=15)
    path = write_curves(tmp_path)
    assert path == tmp_path / "curves.png"
    assert_picture(path, size=(1650, 506))
    assert not list(tmp_path.glob(".curves.png.*")), "the atomic write left its temporary file"


def test_write_curves_one_epoch_without_test_set(tmp_path):
    from zoo.viz.curves import write_curves

    write_metrics(tmp_path, epochs=1, with_test=False)
    assert_picture(write_curves(tmp_path), size=(1650, 506))


def test_read_metrics_rejects_a_foreign_csv(tmp_path):
    from zoo.viz.curves import write_curves

    (tmp_path / "metrics.csv").write_text("step,value\n1,2\n")
    with pytest.raises(CheckpointError, match="lacks column"):
        write_curves(tmp_path)
    assert not (tmp_path / "curves.png").exists()


def test_plot_command_redraws_curves(lenet_run):
    result = invoke("plot", "lenet5")
    assert result.exit_code == 0, result.output
    assert "runs/lenet5/curves.png" in result.output
    assert_picture(lenet_run / "curves.png", size=(1650, 506))


def test_plot_command_with_out_folder(workdir):
    write_metrics(workdir / "elsewhere")
    result = invoke("plot", "lenet5", "--out", "elsewhere")
    assert result.exit_code == 0, result.output
    assert_picture(workdir / "elsewhere" / "curves.png")
    assert not (workdir / "runs").exists()


def test_plot_command_before_training_says_what_to_do(workdir):
    result = invoke("plot", "lenet5")
    assert result.exit_code == 1
    assert "no metrics.csv" in result.output and "zoo train lenet5" in result.output
    assert "Traceback" not in result.output


BATCH_HEADER = "epoch,batch,step,samples,train_loss,train_acc,lr\n"


@pytest.mark.parametrize("rows, problem", [
    ("0,1,1,256,2.3,0.1,0.01\n1,1,2,256,2.3,0.1,0.01\n", "line 2: epoch '0'"),  # divided by epoch - 1
    ("1,nan,1,256,2.3,0.1,0.01\n1,2,2,256,2.3,0.1,0.01\n", "line 2: batch 'nan'"),
    ("1,1,inf,256,2.3,0.1,0.01\n1,2,2,256,2.3,0.1,0.01\n", "line 2: step 'inf'"),
    ("1,1,1,0,2.3,0.1,0.01\n", "line 2: samples '0'"),
    ("1,1,1,256,2.3,0.1,nan\n", "line 2: lr 'nan'"),
    ("1,2,2,256,2.3,0.1,0.01\n1,1,1,256,2.3,0.1,0.01\n", "line 3: epoch 1, step 1 does not follow"),
    ("1,1,1,256,abc,0.1,0.01\n", "line 2: train_loss 'abc' is not a number"),
])
def test_a_damaged_batches_csv_is_skipped_with_a_warning(tmp_path, rows, problem):
    from zoo.viz.curves import read_batches, write_curves

    write_metrics(tmp_path)
    (tmp_path / "batches.csv").write_text(BATCH_HEADER + rows)
    heard: list[str] = []
    assert read_batches(tmp_path / "batches.csv", heard.append) is None
    assert len(heard) == 1 and problem in heard[0] and "drawn without it" in heard[0], heard
    heard.clear()
    assert_picture(write_curves(tmp_path, warn=heard.append))  # the epoch curves still draw
    assert len(heard) == 1 and problem in heard[0]


def test_a_good_or_empty_batches_csv_gives_no_warning(tmp_path):
    from zoo.viz.curves import read_batches

    path = tmp_path / "batches.csv"
    path.write_text(BATCH_HEADER + "1,2,2,64,2.3,0.1,0.01\n1,4,4,64,2.2,0.2,0.01\n2,2,6,64,2.1,0.3,0.01\n")
    heard: list[str] = []
    curve = read_batches(path, heard.append)
    assert curve.every == 2 and curve.x == pytest.approx([0.5, 1.0, 1.5]) and heard == []
    path.write_text(BATCH_HEADER)  # interrupted before its first row: nothing to draw, nothing wrong
    assert read_batches(path, heard.append) is None and heard == []


def test_plot_command_says_it_skipped_a_damaged_batches_csv(lenet_run):
    (lenet_run / "batches.csv").write_text(BATCH_HEADER + "0,1,1,256,2.3,0.1,0.01\n1,1,2,256,2.3,0.1,0.01\n")
    result = runner.invoke(app, ["plot", "lenet5"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: runs/lenet5/batches.csv line 2"), result.stderr
    assert "Traceback" not in result.output and "runs/lenet5/curves.png" in result.stdout
    assert_picture(lenet_run / "curves.png", size=(1650, 506))


def test_metrics_csv_without_a_readable_row_is_one_error(lenet_run):
    (lenet_run / "metrics.csv").write_text("epoch,train_loss\n1,abc\n")
    result = runner.invoke(app, ["plot", "lenet5"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "holds no readable rows" in result.stderr
    assert "train_loss 'abc' is not a number" in result.stderr
    assert not (lenet_run / "curves.png").exists()


def test_metrics_rows_that_are_not_numbers_are_left_out_with_a_warning(tmp_path):
    from zoo.viz.curves import read_metrics

    write_metrics(tmp_path, epochs=3, with_test=False)  # blank test cells: NaN, not damage
    text = (tmp_path / "metrics.csv").read_text()
    heard: list[str] = []
    m = read_metrics(tmp_path / "metrics.csv", heard.append)
    assert len(m) == 3 and heard == [] and all(math.isnan(v) for v in m.test_acc)
    (tmp_path / "metrics.csv").write_text(text + "x,1,2,3,4,5,6\n4,1,abc,,,0.1,1\n")
    m = read_metrics(tmp_path / "metrics.csv", heard.append)
    assert m.epoch == [1.0, 2.0, 3.0]
    assert len(heard) == 1 and "left out 2 of 5 rows" in heard[0] and "line 5: epoch 'x'" in heard[0]


# --- confusion matrix --------------------------------------------------------------------

def test_plot_confusion_with_long_class_names(tmp_path):
    from zoo.data.classes import FASHION_MNIST_CLASSES
    from zoo.viz.confusion import plot_confusion

    noise = torch.randint(0, 5, (10, 10), generator=torch.Generator().manual_seed(0))
    confusion = torch.eye(10, dtype=torch.int64) * 90 + noise
    path = plot_confusion(confusion, FASHION_MNIST_CLASSES, tmp_path / "confusion.png", "fashion: confusion")
    assert_picture(path, size=(1067, 957))  # 9.7 x 8.7 in at 110 dpi


def test_plot_confusion_accepts_lists_and_checks_shapes(tmp_path):
    from zoo.viz.confusion import plot_confusion

    path = plot_confusion([[5, 1], [2, 7]], ["cat", "dog"], tmp_path / "c.png", "two classes")
    assert_picture(path)
    with pytest.raises(UsageError, match="square"):
        plot_confusion([[1, 2, 3], [4, 5, 6]], ["a", "b"], tmp_path / "bad.png", "x")
    with pytest.raises(UsageError, match="class names"):
        plot_confusion([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "bad.png", "x")
    assert not (tmp_path / "bad.png").exists()


# --- feature maps ------------------------------------------------------------------------

LENET_LAYERS = {"01-conv1": (6, 56), "02-pool1": (6, 56), "03-conv2": (16, 60), "04-pool2": (16, 60)}


def test_features_of_a_test_image(lenet_run):
    result = invoke("features", "lenet5", "--index", "3")
    assert result.exit_code == 0, result.output
    target = lenet_run / "features" / "test-3"
    assert f"wrote 4 layers to {Path('runs/lenet5/features/test-3')}" in result.output
    assert_picture(target / "input.png", size=(56, 56), mode="L", min_colors=5)
    for layer, (channels, px) in LENET_LAYERS.items():
        files = sorted((target / layer).glob("channel-*.png"))
        assert len(files) == channels
        for f in files[:3]:
            with Image.open(f) as img:
                assert img.mode == "L" and img.size == (px, px)  # 5x5 upscaled x12, 28x28 x2
        assert_picture(target / f"{layer}.png")
    # Different channels of one layer really are different pictures.
    first, second = (Image.open(target / "01-conv1" / f"channel-00{c}.png").tobytes() for c in (0, 1))
    assert first != second


def test_features_of_an_image_file(lenet_run, tmp_path):
    photo = Image.linear_gradient("L").resize((90, 60)).convert("RGB")  # wrong size, wrong mode
    photo.save(tmp_path / "my digit.jpg")
    result = invoke("features", "lenet5", "--image", str(tmp_path / "my digit.jpg"))
    assert result.exit_code == 0, result.output
    target = lenet_run / "features" / "image-my_digit"
    assert_picture(target / "input.png", size=(56, 56), mode="L", min_colors=5)
    assert_picture(target / "04-pool2.png")


def test_capture_feature_maps_sees_conv_and_pool_and_removes_its_hooks():
    from zoo.viz.features import capture_feature_maps

    model = zoo.create_model("vgg16").eval()
    maps, prediction = capture_feature_maps(model, torch.zeros(1, 3, 32, 32))
    names = [m.name for m in maps]
    assert names[:3] == ["block1.conv1", "block1.conv2", "block1.pool"]
    assert len(maps) == 13 + 5 and tuple(maps[-1].maps.shape) == (512, 1, 1)
    assert 0 <= prediction.label < 10
    assert all(not m._forward_hooks for m in model.modules())


def test_features_needs_trained_weights(workdir):
    result = invoke("features", "lenet5", "--index", "0")
    assert result.exit_code == 1
    assert "no trained weights" in result.output and "zoo train lenet5" in result.output
    assert not (workdir / "runs").exists()


def test_features_index_out_of_range(lenet_run):
    result = invoke("features", "lenet5", "--index", "1000")
    assert result.exit_code == 2
    assert "--index 1000 is out of range" in result.output and "0 to 999" in result.output
    assert not (lenet_run / "features").exists()


def test_features_unreadable_image(lenet_run, tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    result = invoke("features", "lenet5", "--image", str(tmp_path / "notes.png"))
    assert result.exit_code == 1
    assert "not an image file Pillow can read" in result.output
    result = invoke("features", "lenet5", "--image", str(tmp_path / "missing.png"))
    assert result.exit_code == 1 and "missing.png: no such file" in result.output
    result = invoke("features", "lenet5", "--image", str(tmp_path / "notes.png"), "--index", "1")
    assert result.exit_code == 2 and "not both" in result.output


def test_features_of_a_model_without_convolutions(workdir):
    save_weights("mlp", workdir / "runs" / "mlp")
    result = invoke("features", "mlp")
    assert result.exit_code == 2 and "no conv or pool layers" in result.output


# --- misclassified examples --------------------------------------------------------------

def test_mistakes_grid_of_an_untrained_model(lenet_run):
    result = invoke("mistakes", "lenet5")
    assert result.exit_code == 0, result.output
    assert "of 1,000 test images misclassified" in result.output and "the grid shows 64" in result.output
    assert "runs/lenet5/mistakes.png" in result.output
    assert_picture(lenet_run / "mistakes.png", size=(1276, 1606))  # 8 x 8 cells


def test_mistakes_limit_and_missing_weights(lenet_run, workdir):
    result = invoke("mistakes", "lenet5", "--limit", "3")
    assert result.exit_code == 0 and "the grid shows 3" in result.output
    assert_picture(lenet_run / "mistakes.png")
    result = invoke("mistakes", "lenet5", "--weights", "nowhere.safetensors")
    assert result.exit_code == 1 and "no trained weights" in result.output and "check the path" in result.output


def test_select_mistakes_orders_by_confidence():
    from zoo.viz.mistakes import select_mistakes

    predicted, labels = [0, 1, 1, 2, 0, 2], [0, 0, 1, 0, 2, 2]  # wrong: 1, 3, 4
    assert select_mistakes(predicted, labels) == ([1, 3, 4], 3)
    confidence = {1: 0.4, 3: 0.9, 4: 0.6}
    assert select_mistakes(predicted, labels, limit=2, confidence=confidence) == ([3, 4], 3)


# --- learning-rate sweep -----------------------------------------------------------------

def test_interval_loss_from_running_means():
    from zoo.train.events import BatchProgress, EpochStarted, RunStarted
    from zoo.train.sweep import SweepRun, _IntervalLoss

    run = SweepRun(0.1, Path("x"))
    tracker = _IntervalLoss(run)
    tracker.started(RunStarted("m", "d", "d", "cpu", Path("x"), 1, 2, 400, 100, 4, {}, False, True))
    for epoch, means in ((1, (2.0, 1.5)), (2, (1.0, 0.5))):
        tracker.epoch_started(EpochStarted(epoch, 2, 4, 0, 0.1, None))
        for k, mean in enumerate(means, start=1):
            tracker.progress(BatchProgress(epoch, k * 2, 4, k * 200, mean, 0.5, 1.0, 0.1))
    assert run.steps == [0.5, 1.0, 1.5, 2.0]
    assert run.losses == pytest.approx([2.0, 1.0, 1.0, 0.0])  # (1.5 * 400 - 2.0 * 200) / 200 = 1.0


def test_lr_sweep_trains_each_lr_and_plots(workdir):
    result = invoke("lr-sweep", "lenet5", "--lrs", "0.05,0.001,1e9", "--epochs", "1", "--limit", "256",
                    "--batch-size", "32", "--optimizer", "sgd")
    assert result.exit_code == 0, result.output
    sweep = workdir / "runs" / "lenet5" / "lr-sweep"
    assert (sweep / "lr-0.05" / "model.safetensors").is_file()
    assert (sweep / "lr-0.001" / "metrics.csv").is_file()
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    for lr in ("0.05", "0.001"):  # finished, and at chance level exactly when run.json says so
        verdict = json.loads((sweep / f"lr-{lr}" / "run.json").read_text())["health"]["verdict"]
        assert ("chance level" in rows[lr]) == (verdict == "chance-level") and "diverged" not in rows[lr]
    assert "diverged" in rows["1e+09"]  # the loss blew up: kept in the table, not a crash
    assert "runs/lenet5/lr-sweep.png" in result.output
    assert_picture(workdir / "runs" / "lenet5" / "lr-sweep.png", size=(1430, 572))


def test_lr_sweep_rejects_bad_rates(workdir):
    for bad, message in (("0.1,abc", "'abc' is not a number"), ("0.1,-1", "must be positive"),
                         ("0.1,0.1", "listed twice")):
        result = invoke("lr-sweep", "lenet5", "--lrs", bad)
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (workdir / "runs").exists()


def test_train_loss_label_says_when_label_smoothing_is_on(tmp_path):
    from zoo.viz.curves import train_loss_label

    assert train_loss_label(tmp_path) == "train"
    (tmp_path / "run.json").write_text(json.dumps({"model": "lenet5", "hyperparameters": {"label_smoothing": 0.1}}))
    assert train_loss_label(tmp_path) == "train (with label smoothing 0.1)"


def test_percent_ticks_stay_distinct_for_a_run_stuck_near_chance():
    """A 1-epoch sweep at chance had its accuracy axis read '10% 10% 10% 9% 9%' (issue 16, item 1)."""
    from zoo.viz._figure import new_figure, percent_axis

    def labels(values):
        ax = new_figure(4, 3).subplots()
        ax.plot([1, 1, 1], values, marker="o")
        percent_axis(ax)
        ax.figure.canvas.draw()
        low, high = ax.get_ylim()
        return [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks()) if low <= v <= high]

    narrow = labels([9.1, 10.4, 10.0])
    assert len(narrow) >= 3 and len(set(narrow)) == len(narrow), narrow
    wide = labels([10.0, 60.0, 97.0])
    assert all(label.endswith("%") and "." not in label for label in wide), wide
