"""A folder of the user's own images as a dataset: real PNG and JPEG files (grey and RGB,
mixed sizes, one truncated), from the scan through training, evaluation, export and predict."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from zoo.cli.main import app
from zoo.errors import DataError
from zoo.imagefolder import is_folder_dataset
from zoo.imagefolder.decode import decode_files
from zoo.imagefolder.load import load_folder
from zoo.imagefolder.scan import find_layout
from zoo.imagefolder.split import holdout_mask

ZOO = str(Path(sys.executable).parent / "zoo")
CLASSES = ("bright", "dark", "stripes")  # told apart by a tiny model in one epoch
runner = CliRunner()


def picture(kind: str, size: tuple[int, int], rng) -> np.ndarray:
    h, w = size
    noise = rng.integers(0, 30, (h, w))
    if kind == "bright":
        base = np.full((h, w), 200)
    elif kind == "dark":
        base = np.full((h, w), 20)
    else:
        base = np.where((np.arange(w) // 3) % 2 == 0, 230, 10)[None].repeat(h, 0)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def write_image(path: Path, pixels: np.ndarray, rgb: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(pixels, mode="L")
    (img.convert("RGB") if rgb else img).save(path)
    return path


def make_folder(root: Path, per_class: int = 12, classes=CLASSES, seed: int = 0) -> Path:
    """root/CLASS/*.png|jpg: grey PNGs and RGB JPEGs of mixed sizes, some in a sub-folder."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        for i in range(per_class):
            size = (int(rng.integers(20, 48)), int(rng.integers(20, 48)))
            sub = "more/" if i % 5 == 4 else ""
            suffix = ".jpg" if i % 2 else ".png"
            write_image(root / kind / f"{sub}{kind}-{i}{suffix}", picture(kind, size, rng), rgb=bool(i % 2))
    return root


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def invoke(*args, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_folder(tmp_path / "pictures")


def test_a_path_is_a_folder_and_a_registered_name_is_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "shoes").mkdir()
    assert is_folder_dataset("./mnist") and is_folder_dataset("data/x")
    assert not is_folder_dataset("mnist")  # registered names win over a folder of that name
    assert is_folder_dataset("shoes") and not is_folder_dataset("no-such-thing")


def test_classes_and_files_are_found_as_torchvision_finds_them(folder):
    from torchvision.datasets import ImageFolder

    (folder / "dark" / "notes.txt").write_text("not an image, ignored by name")
    layout = find_layout(folder)
    reference = ImageFolder(str(folder))
    assert layout.train.classes == tuple(reference.classes) == CLASSES
    ours = [(str(layout.train.folder / e.path), e.label) for e in layout.train.files]
    assert ours == [(str(Path(p).resolve()), y) for p, y in reference.samples]
    assert layout.test is None and layout.train.ignored == 1


def test_links_that_leave_the_folder_are_not_followed(folder, tmp_path):
    outside = make_folder(tmp_path / "elsewhere", per_class=2, classes=("secret",))
    os.symlink(outside / "secret", folder / "secret")  # a class folder outside
    os.symlink(outside / "secret" / "secret-0.png", folder / "dark" / "leak.png")  # a file outside
    os.symlink(folder / "bright" / "bright-0.png", folder / "dark" / "inside.png")  # inside: fine
    layout = find_layout(folder)
    names = [e.path for e in layout.train.files]
    assert "secret" not in layout.train.classes
    assert "dark/leak.png" not in names and "dark/inside.png" in names
    assert layout.train.outside_links == ["dark/leak.png"]


@pytest.mark.parametrize("case, needle", [
    ("missing", "does not exist"),
    ("one class", "only one class folder (bright)"),
    ("empty class", "has no images"),
    ("no classes", "has no class folders"),
    ("test class unknown", "classes the training split lacks: zebra"),
    ("classes beside test", "mixes two layouts: test/ holds class folders (bright, dark)"),
    ("a stray folder beside train", "mixes two layouts: train/ holds class folders (bright, dark, stripes)"),
])
def test_bad_folders_are_one_clear_error(tmp_path, case, needle):
    root = tmp_path / "data"
    if case == "one class":
        make_folder(root, per_class=2, classes=("bright",))
    elif case == "empty class":
        make_folder(root, per_class=2)
        (root / "empty").mkdir()
    elif case == "no classes":
        root.mkdir()
        write_image(root / "loose.png", picture("dark", (8, 8), np.random.default_rng(0)), rgb=False)
    elif case == "test class unknown":
        make_folder(root / "train", per_class=2)
        make_folder(root / "test", per_class=1, classes=("bright", "zebra"))
    elif case == "classes beside test":
        make_folder(root, per_class=2)
        make_folder(root / "test", per_class=1, classes=("bright", "dark"))
    elif case == "a stray folder beside train":
        make_folder(root / "train", per_class=2)
        make_folder(root / "test", per_class=1)
        make_folder(root / "notes", per_class=1, classes=("drafts",))
    with pytest.raises(DataError) as info:
        find_layout(root)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_holdout_is_seeded_stratified_and_keeps_every_class_training(folder):
    labels = np.repeat(np.arange(3), [10, 20, 2])
    mask = holdout_mask(labels, 0.1, seed=3)
    assert [int(mask[labels == k].sum()) for k in range(3)] == [1, 2, 1]
    assert np.array_equal(mask, holdout_mask(labels, 0.1, seed=3))
    assert not np.array_equal(holdout_mask(labels, 0.5, seed=3), holdout_mask(labels, 0.5, seed=4))
    data = load_folder(folder, (1, 28, 28), holdout=0.25, seed=0)
    assert data.holdout["test_images"] == len(data.test.files) == 9  # 3 of each class's 12
    assert sorted(torch.bincount(data.test.labels).tolist()) == [3, 3, 3]
    assert not set(data.test.files) & set(data.train.files)


def test_pixels_are_the_models_channels_and_size_and_statistics_come_from_training_images(folder):
    grey = load_folder(folder, (1, 28, 28))
    rgb = load_folder(folder, (3, 32, 32))
    assert grey.train.images.dtype == torch.uint8 and grey.train.images.shape[1:] == (1, 28, 28)
    assert rgb.train.images.shape[1:] == (3, 32, 32)
    x = grey.train.images.double() / 255
    assert grey.mean[0] == pytest.approx(float(x.mean()), abs=1e-5)
    assert grey.std[0] == pytest.approx(float(x.std(unbiased=False)), abs=1e-5)
    assert len(rgb.mean) == 3


def test_parallel_decoding_gives_the_same_pixels_as_in_process(folder):
    paths = find_layout(folder).train.paths()
    truncate(paths[5])
    alone = decode_files(paths, (1, 28, 28), workers=1)
    progress = []
    pooled = decode_files(paths, (1, 28, 28), workers=2, chunk=7, parallel_from=0,
                          on_progress=lambda done, total: progress.append((done, total)))
    assert np.array_equal(alone.images, pooled.images) and np.array_equal(alone.ok, pooled.ok)
    assert [i for i, _ in pooled.bad] == [5] and progress[-1] == (len(paths), len(paths))


def test_the_second_start_reads_the_cache_and_a_changed_file_is_decoded_again(folder, tmp_path):
    cache = tmp_path / "cache"
    events = []
    first = load_folder(folder, (1, 28, 28), cache_root=cache, on_progress=events.append)
    assert not first.cached and not events[-1].cached
    second = load_folder(folder, (1, 28, 28), cache_root=cache, on_progress=events.append)
    assert second.cached and events[-1].cached
    assert torch.equal(first.train.images, second.train.images) and first.mean == second.mean
    target = folder / "dark" / "dark-0.png"
    write_image(target, picture("bright", (30, 30), np.random.default_rng(1)), rgb=False)
    os.utime(target, ns=(1, 1))
    third = load_folder(folder, (1, 28, 28), cache_root=cache)
    assert not third.cached
    entries = list((cache / "image-folders").iterdir())
    assert len(entries) == 1  # the stale entry was replaced, not kept beside the new one
    entries[0].write_bytes(b"damaged")
    fourth = load_folder(folder, (1, 28, 28), cache_root=cache)
    assert not fourth.cached and torch.equal(fourth.train.images, third.train.images)


def test_an_unreadable_image_is_named_before_training_starts(folder, tmp_path):
    bad = truncate(folder / "stripes" / "stripes-2.png")
    env = {**os.environ, "COLUMNS": "300"}
    proc = subprocess.run([ZOO, "train", "lenet5", "--dataset", str(folder), "--epochs", "1", "--threads", "1",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(lines) == 1 and str(bad) in lines[0] and "--skip-bad" in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()


def test_class_names_follow_the_run_from_training_through_export_to_predict(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    truncate(folder / "stripes" / "stripes-2.png")
    run = tmp_path / "run"
    result = invoke("train", "lenet5", "--dataset", folder, "--skip-bad", "--holdout", "0.25", "--epochs", "3",
                    "--threads", "1", "--batch-size", "8", "--out", run, "--quiet")
    assert "skipped 1 unreadable image file(s)" in result.output and "stripes-2.png" in result.output
    info = json.loads((run / "run.json").read_text())
    assert info["class_names"] == list(CLASSES) and info["dataset"] == str(folder.resolve())
    record = info["image_folder"]
    assert record["skipped_files"] == ["stripes/stripes-2.png"] and record["holdout"]["fraction"] == 0.25
    assert record["normalization"]["mean"] == info["fitted"]["mean"]
    assert record["train_images"] + record["test_images"] == 3 * 12 - 1
    weights = run / "model.safetensors"
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as fh:
        assert json.loads(fh.metadata()["zoo.fitted"])["class_names"] == list(CLASSES)
        assert fh.get_tensor("fc3.weight").shape[0] == 3

    report = json.loads(invoke("evaluate", "lenet5", "--weights", weights, "--json").stdout)
    assert report["samples"] == record["test_images"]  # exactly the held-out images
    assert report["class_names"] == list(CLASSES) and list(report["per_class_accuracy"]) == list(CLASSES)

    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    for variant in ([], ["--quantize", "int8"]):  # never into the folder the weights were trained on
        inside = invoke("export", "lenet5", "--weights", weights, "--out", folder / "model.onnx", *variant, ok=False)
        assert inside.exit_code == 1 and "the folder of images these weights were trained on" in inside.stderr
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before

    onnx_path = tmp_path / "shapes.onnx"  # its test vectors go to shapes/, beside it
    invoke("export", "lenet5", "--weights", weights, "--out", onnx_path)
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(props["zoo.class_names"]) == list(CLASSES)
    assert json.loads(props["zoo.preprocessing"])["mean"] == info["fitted"]["mean"]
    checks = json.loads(props["zoo.verification"])["checks"]  # compared on the run's own test images only
    assert any(c.endswith(f"test images, {record['test_images']}") for c in checks), checks

    int8 = tmp_path / "shapes.int8.onnx"  # calibrated and checked on the folder's own images, split as the run split them
    invoke("export", "lenet5", "--weights", weights, "--quantize", "int8", "--out", int8, "--max-drop", "100",
           "--calibration", "1000")
    props = {p.key: p.value for p in onnx.load(str(int8)).metadata_props}
    assert json.loads(props["zoo.class_names"]) == list(CLASSES)
    assert json.loads(props["zoo.quantization"])["calibration"]["count"] == record["train_images"]  # never a test image
    assert json.loads(props["zoo.accuracy"])["samples"] == record["test_images"]

    images = [folder / "bright" / "bright-1.jpg", folder / "dark" / "dark-0.png"]
    answer = json.loads(invoke("predict", "lenet5", "--onnx", onnx_path, *images, "--json").stdout)
    torch_answer = json.loads(invoke("predict", "lenet5", "--torch", "--weights", weights, *images, "--json").stdout)
    for got in (answer, torch_answer):
        tops = [p["top"] for p in got["predictions"]]
        assert all({t["class"] for t in top} <= set(CLASSES) for top in tops)
    assert [p["top"][0]["class"] for p in answer["predictions"]] == \
           [p["top"][0]["class"] for p in torch_answer["predictions"]]


def test_a_class_named_like_a_split_is_still_a_class(tmp_path):
    root = make_folder(tmp_path / "vehicles", per_class=2, classes=("bus", "car", "train"))
    make_folder(root / "train", per_class=1, classes=("steam",))  # its own sub-folder, named like no class
    assert find_layout(root).train.classes == ("bus", "car", "train")


def test_train_and_test_folders_are_the_splits(tmp_path):
    root = tmp_path / "split"
    make_folder(root / "train", per_class=6)
    make_folder(root / "val", per_class=2, classes=("dark", "stripes"), seed=1)  # a class may be absent
    run = tmp_path / "run"
    invoke("train", "cnn", "--dataset", root, "--epochs", "1", "--threads", "1", "--out", run, "--quiet")
    info = json.loads((run / "run.json").read_text())
    assert info["image_folder"]["split"] == "folders" and info["image_folder"]["test_folder"] == "val"
    assert info["train_samples"] == 18 and info["test_samples"] == 4 and info["class_names"] == list(CLASSES)
    report = json.loads(invoke("evaluate", "cnn", "--weights", run / "model.safetensors", "--json").stdout)
    assert report["class_names"] == list(CLASSES) and report["samples"] == 4
    assert [sum(row) for row in report["confusion"]] == [0, 2, 2]  # rows: true class
    shown = invoke("mistakes", "cnn", "--out", run).output
    assert "of 4 test images misclassified" in shown and (run / "mistakes.png").is_file()
    features = invoke("features", "cnn", "--out", run, "--index", "1").output
    assert any(f"true {name}" in features for name in ("dark", "stripes"))
    sweep = tmp_path / "sweep"
    invoke("lr-sweep", "cnn", "--dataset", root, "--lrs", "0.01", "--epochs", "1", "--out", sweep)
    swept = json.loads(next((sweep / "lr-sweep").glob("*/run.json")).read_text())
    assert swept["class_names"] == list(CLASSES) and swept["test_samples"] == 4


def test_an_export_named_like_the_image_folder_never_writes_into_it(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `zoo export ... --out pictures.onnx` run beside the user's pictures/
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    result = invoke("export", "lenet5", "--untrained", "--no-verify", "--out", "pictures.onnx", ok=False)
    assert result.exit_code == 1 and "is not a test-vector folder of zoo's" in result.stderr, result.output
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    assert not (tmp_path / "pictures.onnx").exists()
    invoke("export", "lenet5", "--untrained", "--no-verify", "--out", "pictures-model.onnx")  # another name works
    assert (tmp_path / "pictures-model" / "vectors.json").is_file()
