"""fp32 ONNX -> int8 (static, QDQ) or fp16 ONNX, with maintained converters.

int8: `onnxruntime.quantization.quant_pre_process` (shape inference, graph
optimisation), then `quantize_static` in QDQ format with per-channel weights,
calibrated on training images preprocessed exactly as at evaluation. Not dynamic
quantization: its on-the-fly activation ranges can wreck small CNNs.

Two choices differ from quantize_static's defaults, both measured (benchmarks/quantize.py,
full Fashion-MNIST, README "int8 and fp16 against fp32"):
- reduce_range: 7-bit weights. On x86 CPUs without VNNI (AVX2, AVX-512 before
  Cascade Lake, AMD before Zen 4) ONNX Runtime's uint8 x int8 kernels add pairs of
  products in saturating 16-bit lanes (vpmaddubsw), and 255 * 127 * 2 overflows them.
  On this AVX2 machine the cnn (full Fashion-MNIST, 91.72%) agreed with PyTorch on
  97.0% of the test images with 8-bit weights and 99.7% with 7-bit ones, and lost
  0.89 points against none (lenet5: 98.94% -> 99.52% agreement); the 8-bit file
  computed as float QDQ arithmetic (no integer kernels) agreed on 99.8%: the loss was
  the kernel, not the ranges. ONNX Runtime's own guidance for non-VNNI CPUs is the same,
  and a file cannot know the CPU it will run on. More calibration images (2,048, on
  both) or the entropy/percentile methods (on a 3-epoch cnn) changed nothing. uint8 weights
  (--weight-type uint8) avoid the overflow with 8 bits, but ran VGG16 at batch 64 only
  1.3x faster than fp32 where 7-bit int8 ran 2.1x (same run, load 2.3).
- float logits: the QuantizeLinear/DequantizeLinear pair quantize_static puts on the
  graph output is removed, so the last layer writes float32 logits straight from its
  int32 accumulator (ONNX Runtime fuses it into QGemm with a float result). Quantized
  to 256 steps between the calibration extremes, the cnn's logits were clipped (largest
  difference from PyTorch 1.8 against 0.27) and tied for the top class on 0.25% of the
  images, which skews the probabilities `zoo predict` shows.

- slimmer file (qdq_graph.slim): the requantizations around MaxPool/Reshape that give back
  the integers they started from, the all-zero int32 bias zero points, quant_pre_process's
  value_info and markers go; the logits are the same bit for bit.

fp16: onnxconverter-common's float16 converter with `keep_io_types`, so the file
still takes float32 (or uint8 with --raw-input) and returns float32 logits.

The converters work on files; everything here goes through a private temporary
folder and hands back a ModelProto, so nothing half-made reaches the user's folder.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, ExportError, UsageError, ZooError, describe
from .defaults import DEFAULT_CALIBRATION, DEFAULT_MAX_DROP, DEFAULT_MIN_AGREEMENT
from .metadata import PRECISIONS
from .qdq_graph import float_outputs, slim, tidy
from .quiet import captured

METHODS = ("minmax", "entropy", "percentile")
INT_TYPES = ("uint8", "int8")
CALIBRATION_BATCH = 64


@dataclass
class QuantizeOptions:
    precision: str = "int8"  # int8 or fp16
    calibration: int = DEFAULT_CALIBRATION  # training images for int8 activation ranges
    method: str = "minmax"
    seed: int = 0  # picks the calibration images
    activation_type: str = "uint8"
    weight_type: str = "int8"
    per_channel: bool = True
    reduce_range: bool = True  # 7-bit weights: no 16-bit saturation on non-VNNI x86 (module docstring)
    dataset: str | None = None  # calibration and verification data; None: what the weights were trained on
    max_drop: float = DEFAULT_MAX_DROP  # refuse the file when accuracy drops more (points)
    min_agreement: float = DEFAULT_MIN_AGREEMENT  # top-1 agreement with PyTorch, 0..1
    verify_samples: int | None = None  # None: the whole test split

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS or self.precision == "fp32":
            raise UsageError(f"unknown --quantize {self.precision!r}: use int8 or fp16")
        if self.method not in METHODS:
            raise UsageError(f"unknown --calibration-method {self.method!r}: use {', '.join(METHODS)}")
        for what, value in (("--activation-type", self.activation_type), ("--weight-type", self.weight_type)):
            if value not in INT_TYPES:
                raise UsageError(f"unknown {what} {value!r}: use uint8 or int8")
        if self.calibration < 1:
            raise UsageError(f"--calibration must be >= 1 image, got {self.calibration}")
        if not 0 <= self.max_drop <= 100:
            raise UsageError(f"--max-drop must be 0..100 accuracy points, got {self.max_drop}")
        if not 0 <= self.min_agreement <= 1:
            raise UsageError(f"--min-agreement must be 0..1, got {self.min_agreement}")
        if self.verify_samples is not None and self.verify_samples < 1:
            raise UsageError(f"--verify-samples must be >= 1, got {self.verify_samples}")


def load_split(dataset: str, split: str, data_dir, what: str, spec=None, run_info: dict | None = None):
    """One split, found (or downloaded, unless offline) and falling back as for training;
    a missing one is one line saying how to provide it. A folder of images (zoo.imagefolder)
    is read at `spec`'s size, labelled by its (fitted) class names, and split as the run
    whose run.json is `run_info` split it when that run was trained on it."""
    from ..data.resolve import load_dataset
    from ..imagefolder import is_folder_dataset

    if spec is not None and is_folder_dataset(dataset):
        from ..data.resolve import data_root
        from ..imagefolder.test_split import load_split as load_folder_split

        return load_folder_split(dataset, split, spec, data_root(data_dir), run_info)
    try:
        return load_dataset(dataset, split, data_dir=data_dir)
    except ZooError as exc:
        # What to do first: the resolver's own explanation (paths) can be long and gets cut.
        raise DataError(f"no {what} data: dataset '{dataset}' is not available; put it under --data-dir or "
                        f"$ZOO_DATA_DIR, or pass another --dataset ({exc})") from exc


def calibration_images(spec, dataset: str, count: int, seed: int, data_dir=None, run_info: dict | None = None):
    """(uint8 images (n, C, H, W), the loaded training split): a seeded random pick of `count`."""
    import torch

    data = load_split(dataset, "train", data_dir, "calibration", spec, run_info)
    data.check_fits(spec.name, spec.input_shape)
    if len(data) == 0:
        raise DataError(f"no calibration data: the training split of '{data.variant}' is empty")
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:count]
    return data.images[pick], data


class _Reader:
    """A CalibrationDataReader (the ABC accepts any class with get_next) over prepared inputs."""

    def __init__(self, input_name: str, batches: np.ndarray):
        self.input_name, self.batches, self.position = input_name, batches, 0

    def get_next(self):
        if self.position >= len(self.batches):
            return None
        start = self.position
        self.position += CALIBRATION_BATCH
        return {self.input_name: self.batches[start:start + CALIBRATION_BATCH]}

    def rewind(self) -> None:
        self.position = 0


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[name]


def _qtype(name: str):
    from onnxruntime.quantization import QuantType

    return {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[name]


def quantize_int8(proto, inputs: np.ndarray, options: QuantizeOptions):
    """Static QDQ int8 of an fp32 ModelProto, calibrated on `inputs` (the model's input, preprocessed)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = _Reader(proto.graph.input[0].name, inputs)
    with tempfile.TemporaryDirectory(prefix="zoo-quantize-") as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        try:
            with captured():
                quant_pre_process(proto, str(pre))
                quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ,
                                per_channel=options.per_channel, reduce_range=options.reduce_range,
                                activation_type=_qtype(options.activation_type),
                                weight_type=_qtype(options.weight_type), calibrate_method=_method(options.method),
                                calibration_providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises plain Exceptions, KeyErrors, its pybind errors
            raise ExportError(f"int8 quantization failed: {_unsupported(exc, proto)}; try --quantize fp16") from exc
        model = onnx.load(str(out))
    float_outputs(model)
    slim(model)
    tidy(model)
    return model


STANDARD_DOMAINS = ("", "ai.onnx", "com.microsoft")


def _unsupported(exc: BaseException, proto) -> str:
    """Name the operator: one the message mentions, else one outside the standard domains."""
    text = describe(exc)
    ops = sorted({n.op_type for n in proto.graph.node}, key=len, reverse=True)
    named = next((op for op in ops if op in text), None)
    if named is None:
        named = next((f"{n.domain}.{n.op_type}" for n in proto.graph.node if n.domain not in STANDARD_DOMAINS), None)
    return f"it cannot handle operator {named} ({text})" if named else text


def to_fp16(proto):
    """fp16 weights and arithmetic, float32 (or uint8) in and float32 out."""
    import onnx
    from onnxconverter_common import float16

    # keep_io_types covers float inputs only: a uint8 input's first Cast (--raw-input) stays float32.
    pixels = {i.name for i in proto.graph.input if i.type.tensor_type.elem_type != onnx.TensorProto.FLOAT}
    keep = [n.name for n in proto.graph.node if pixels & set(n.input)]
    try:
        with captured():
            return float16.convert_float_to_float16(proto, keep_io_types=True, node_block_list=keep)
    except Exception as exc:
        raise ExportError(f"fp16 conversion failed: {_unsupported(exc, proto)}") from exc


def scheme_of(options: QuantizeOptions, dataset: str, calibration_variant: str | None, count: int) -> dict:
    """What zoo.quantization records."""
    import onnxruntime

    if options.precision == "fp16":
        import onnxconverter_common

        return {"scheme": "fp16 weights and arithmetic, float32 input/output (keep_io_types)",
                "tool": f"onnxconverter-common {onnxconverter_common.__version__} float16"}
    return {"scheme": "static QDQ", "per_channel": options.per_channel, "activation_type": options.activation_type,
            "weight_type": options.weight_type, "reduce_range": options.reduce_range, "float_output": True,
            "calibration": {"dataset": dataset, "variant": calibration_variant, "split": "train",
                            "count": count, "method": options.method, "seed": options.seed},
            "tool": f"onnxruntime.quantization {onnxruntime.__version__} (quant_pre_process, quantize_static)"}
