"""Bad input, black-box: the real `zoo` console script in a scratch folder. Each case
must end with ONE "error:" line on stderr (no traceback), a non-zero exit code, and the
user's files untouched."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ZOO = str(Path(sys.executable).parent / "zoo")
REPO = Path(__file__).resolve().parents[1]


def zoo(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ZOO_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("ZOO_PLUGINS", None)
    return subprocess.run([ZOO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def one_error(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The single error line; notes (e.g. the bundled-sample fallback) may precede it."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A folder holding runs/lenet5 from one tiny epoch, shared by every test here."""
    root = tmp_path_factory.mktemp("bad-input")
    result = zoo(root, "train", "lenet5", "--limit", "256", "--epochs", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture
def scratch(trained, tmp_path) -> Path:
    """An empty working folder plus a plain file where folders are sometimes expected."""
    (tmp_path / "notes.txt").write_text("keep me\n")
    return tmp_path


def weights(trained: Path) -> str:
    return str(trained / "runs" / "lenet5" / "model.safetensors")


# --- an output path inside a file, or a folder where a file goes ------------------------

def test_export_out_inside_a_file(scratch):
    result = zoo(scratch, "export", "lenet5", "--untrained", "--no-verify", "--out", "notes.txt/x.onnx")
    one_error(result, 1, "notes.txt is a file")
    assert (scratch / "notes.txt").read_text() == "keep me\n"


@pytest.mark.parametrize("cmd", [["features", "--out", "notes.txt"], ["mistakes", "--out", "notes.txt"],
                                 ["evaluate", "--plot", "--out", "notes.txt/cm.png"]])
def test_pictures_out_inside_a_file(trained, scratch, cmd):
    result = zoo(scratch, cmd[0], "lenet5", *cmd[1:], "--weights", weights(trained))
    one_error(result, 1, "cannot write notes.txt/", "notes.txt is a file")
    assert (scratch / "notes.txt").read_text() == "keep me\n"


def test_plot_when_curves_png_is_a_folder(trained, scratch):
    run = scratch / "run"
    run.mkdir()
    (run / "metrics.csv").write_bytes((trained / "runs" / "lenet5" / "metrics.csv").read_bytes())
    (run / "curves.png").mkdir()
    (run / "curves.png" / "mine.txt").write_text("mine")
    one_error(zoo(scratch, "plot", "lenet5", "--out", "run"), 1, "curves.png: it is a folder")
    assert (run / "curves.png" / "mine.txt").read_text() == "mine"
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.parametrize("cmd", ["evaluate", "mistakes", "features"])
def test_a_test_set_of_another_image_shape_is_named(trained, scratch, cmd):
    from test_data import write_cifar

    write_cifar(scratch / "cifar10", binary=True, n=4)  # real CIFAR-10 binary batches, 3x32x32
    result = zoo(scratch, cmd, "lenet5", "--weights", weights(trained), "--dataset", "cifar10", "--data-dir", str(scratch))
    one_error(result, 1, "'cifar10' has 3x32x32 images but 'lenet5' takes 1x28x28", "--dataset")
    assert not (scratch / "runs").exists()  # no grid, no feature maps written


@pytest.mark.parametrize("cmd", ["train", "export"])
def test_training_or_calibrating_on_another_image_shape_is_named(trained, scratch, cmd):
    from test_data import write_cifar

    write_cifar(scratch / "cifar10", binary=True, n=4)
    args = (["train", "lenet5", "--epochs", "1", "--out", "run"] if cmd == "train" else
            ["export", "lenet5", "--onnx", "--quantize", "int8", "--weights", weights(trained)])
    result = zoo(scratch, *args, "--dataset", "cifar10", "--data-dir", str(scratch))
    one_error(result, 1, "'cifar10' has 3x32x32 images but 'lenet5' takes 1x28x28", "--dataset")
    assert not (scratch / "run" / "model.safetensors").exists()
    assert not list(scratch.glob("exported/*.onnx"))


def test_lr_sweep_out_inside_a_file(scratch):
    result = zoo(scratch, "lr-sweep", "lenet5", "--lrs", "0.1", "--epochs", "1", "--limit", "256", "--out", "notes.txt")
    one_error(result, 1, "notes.txt is a file")
    assert (scratch / "notes.txt").read_text() == "keep me\n"


def test_train_out_inside_a_file(scratch):
    result = zoo(scratch, "train", "lenet5", "--epochs", "1", "--limit", "256", "--out", "notes.txt/run")
    one_error(result, 1, "notes.txt is a file")
    assert (scratch / "notes.txt").read_text() == "keep me\n"


# --- metrics.csv that is empty, header-only or foreign --------------------------------------

@pytest.mark.parametrize("text, message", [
    ("", "metrics.csv is empty"),
    ("epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds\n", "has no epochs yet"),
    ("epoch,foo\n1,2\n", "lacks column(s) train_loss:"),
])
def test_plot_bad_metrics(scratch, text, message):
    (scratch / "run").mkdir()
    (scratch / "run" / "metrics.csv").write_text(text)
    one_error(zoo(scratch, "plot", "lenet5", "--out", "run"), 1, message)
    assert (scratch / "run" / "metrics.csv").read_text() == text
    assert not (scratch / "run" / "curves.png").exists()


# --- corrupt inputs ------------------------------------------------------------------------

def test_corrupt_files(trained, scratch):
    good = Path(weights(trained)).read_bytes()
    (scratch / "trunc.safetensors").write_bytes(good[:1000])
    (scratch / "empty.onnx").write_bytes(b"")
    (scratch / "garbage.onnx").write_bytes(good[:5000])
    (scratch / "empty.png").write_bytes(b"")
    one_error(zoo(scratch, "evaluate", "lenet5", "--weights", "trunc.safetensors"), 1, "not a readable safetensors")
    one_error(zoo(scratch, "verify", "lenet5", "--onnx", "empty.onnx", "--vectors"), 1, "export it again")
    one_error(zoo(scratch, "bench", "lenet5", "--onnx", "garbage.onnx", "--untrained"), 1, "not a valid ONNX file")
    one_error(zoo(scratch, "predict", "lenet5", "empty.png", "--torch", "--weights", weights(trained)), 1,
              "not an image file")
    one_error(zoo(scratch, "predict", "lenet5", ".", "--torch", "--untrained"), 1, "is a folder")
    one_error(zoo(scratch, "features", "lenet5", "--weights", weights(trained), "--index", "-1"), 2, "out of range")
    assert (scratch / "trunc.safetensors").read_bytes() == good[:1000]


# --- option values: typer's own errors are one line too ------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["export", "lenet5", "--static-batch", "0"], "Invalid value for '--static-batch'"),
    (["export", "lenet5", "--opset", "7"], "--opset 7 is not supported"),
    (["predict", "lenet5", "x.png", "--top", "0"], "Invalid value for '--top'"),
    (["train", "lenet5", "--epochs", "abc"], "Invalid value for '--epochs'"),
    (["train", "lenet5", "--epochs", "0", "--out", "r"], "Invalid value for '--epochs'"),
    (["train", "lenet5", "--lr", "-1", "--out", "r"], "lr must be a positive number"),
    (["lr-sweep", "lenet5", "--lrs", "abc"], "'abc' is not a number"),
    (["features", "lenet5", "--untrained"], "No such option: --untrained"),
    (["train", "lenet5", "--dataset", "nope", "--out", "r"], "(`zoo datasets` shows them all)"),
])
def test_bad_option_values(scratch, args, needle):
    line = one_error(zoo(scratch, *args), 2, needle)
    assert "╭" not in line
    assert sorted(p.name for p in scratch.iterdir()) == ["notes.txt"]  # nothing created


# --- names from the command line never leave their folder ----------------------------------

@pytest.mark.parametrize("name, cmd", [("../../etc", ["train", "--epochs", "1"]), ("lenet5/../x", ["export", "--untrained"]),
                                       ("/tmp/x", ["plot"]), ("../x", ["info"])])
def test_path_like_model_names(scratch, name, cmd):
    one_error(zoo(scratch, cmd[0], name, *cmd[1:]), 2, "unknown model")
    assert sorted(p.name for p in scratch.iterdir()) == ["notes.txt"]


# --- start-up and safety -------------------------------------------------------------------

def test_help_does_not_import_torch():
    code = ("import sys\nfrom cli.main import app\n"
            "for cmd in ([], ['train'], ['export'], ['verify'], ['predict'], ['lr-sweep'], ['features']):\n"
            "    try:\n        app(cmd + ['--help'])\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_no_unpickling_loads_in_the_code():
    pattern = re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)|pickle\.loads?\(")
    offenders = [f"{p.relative_to(REPO)}:{i}" for folder in ("zoo", "cli", "plugins")
                 for p in (REPO / folder).rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_bad_option_is_named_before_the_folder_check(tmp_path):
    (tmp_path / "runs" / "lenet5").mkdir(parents=True)
    (tmp_path / "runs" / "lenet5" / "run.json").write_text("{}")
    proc = subprocess.run([ZOO, "train", "lenet5", "--lr", "-1"], capture_output=True, text=True, cwd=tmp_path,
                          env=os.environ | {"ZOO_OFFLINE": "1"}, timeout=120)
    assert proc.returncode == 2
    assert "lr must be a positive number" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("flag, value", [("--atol", "nan"), ("--rtol", "nan"), ("--atol", "inf"), ("--rtol", "-1")])
@pytest.mark.parametrize("cmd", ["verify", "export"])
def test_a_tolerance_that_would_pass_any_file_is_refused(scratch, cmd, flag, value):
    """A NaN tolerance compares false, so no error ever exceeded it: a tampered file passed."""
    result = zoo(scratch, cmd, "lenet5", "--untrained", flag, value)
    one_error(result, 2, f"{flag} must be a finite number >= 0, got {float(value)}")
    assert not (scratch / "exported").exists()
