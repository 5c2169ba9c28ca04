"""What a zoo export records about itself, in the ONNX file's `metadata_props`.

Every key starts with `zoo.`; values are strings, lists and objects are JSON:

    zoo.version             zoo that wrote the file
    zoo.plugin              distribution that registered the model, and zoo.plugin_version
    zoo.model               model name (verify refuses a file for another model)
    zoo.dataset             dataset the model is for; zoo.dataset_variant: the one its weights saw
    zoo.input_name          graph input name ("input"); zoo.output_name ("logits")
    zoo.input_shape         JSON, e.g. ["batch", 1, 28, 28]; an int first when the batch is static
    zoo.input_layout        "NCHW"
    zoo.input_dtype         "float32" (normalised pixels) or "uint8" (raw pixels, --raw-input)
    zoo.preprocessing       JSON {"scale": 1/255, "mean": [...], "std": [...], "in_graph": bool,
                            "formula": ...}: what a consumer applies (in_graph false) or need not
    zoo.class_names         JSON list, index = output position
    zoo.weights_sha256      sha256 of the weights file (or of the in-memory tensors, see weights.py)
    zoo.weights_source      where the weights came from
    zoo.opset               ONNX opset of the default domain
    zoo.torch_version, zoo.onnx_version, zoo.onnxscript_version, zoo.onnxruntime_version
    zoo.verification        JSON verdict of the check made at export: {"verdict": "PASS", ...}
                            or {"verdict": "not run"} after --no-verify
    zoo.output              what the output holds: "logits" (raw scores; softmax gives probabilities)
    zoo.input_polarity      "light-on-dark" (MNIST-style: invert dark-on-light drawings) or "natural"
    zoo.resize              how an image of another size becomes the input (centre crop, then Lanczos)
    zoo.precision           "fp32", "int8" (static QDQ quantization) or "fp16"
    zoo.quantization        JSON: how an int8/fp16 file was made (scheme, types, calibration data,
                            count, method, seed, tool); {} for fp32
    zoo.accuracy            JSON: accuracy measured at export on the test split (PyTorch and this
                            file, drop in points, top-1 agreement, largest logit difference); int8/fp16
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import ExportError
from ..schema import (Anything, Bool, Checker, Int, JsonText, List, Num, Obj, Optional, SchemaError, Str,
                      class_names)
from ..runfiles import DATASET  # a registered name, or a folder of images' absolute path
from ..safeio import for_display


PREFIX = "zoo."
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
LAYOUT = "NCHW"
BATCH_AXIS = "batch"
SCALE = 1 / 255
OUTPUT_KIND = "logits"
RESIZE_RULE = ("convert to the input's channels (gray or RGB), centre-crop to the input's aspect ratio, "
               "resize to H x W with Lanczos (Pillow ImageOps.fit)")
PRECISIONS = ("fp32", "int8", "fp16")


def polarity_of(input_channels: int) -> str:
    """The zoo's one-channel datasets are MNIST-style: a light object on a dark ground."""
    return "light-on-dark" if input_channels == 1 else "natural"


@dataclass
class ExportFacts:
    """The metadata of one export, typed. Fields are None when a file lacks them."""

    model: str | None = None
    zoo_version: str | None = None
    plugin: str | None = None
    plugin_version: str | None = None
    dataset: str | None = None
    dataset_variant: str | None = None
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    input_shape: list | None = None  # ["batch", C, H, W] or [N, C, H, W]
    input_layout: str = LAYOUT
    input_dtype: str = "float32"
    preprocessing: dict = field(default_factory=dict)
    class_names: list[str] | None = None
    weights_sha256: str | None = None
    weights_source: str | None = None
    opset: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    verification: dict = field(default_factory=dict)
    output: str = OUTPUT_KIND
    input_polarity: str | None = None
    resize: str | None = None
    precision: str = "fp32"
    quantization: dict = field(default_factory=dict)
    accuracy: dict = field(default_factory=dict)

    @property
    def quantized(self) -> bool:
        """int8 or fp16: checked by accuracy and agreement, not element-wise closeness."""
        return self.precision != "fp32"

    @property
    def raw_input(self) -> bool:
        return self.input_dtype == "uint8"

    @property
    def static_batch(self) -> int | None:
        first = (self.input_shape or [None])[0]
        return first if isinstance(first, int) else None

    def to_props(self) -> dict[str, str]:
        props = {
            "version": self.zoo_version, "plugin": self.plugin, "plugin_version": self.plugin_version,
            "model": self.model, "dataset": self.dataset, "dataset_variant": self.dataset_variant,
            "input_name": self.input_name, "output_name": self.output_name,
            "input_shape": json.dumps(self.input_shape), "input_layout": self.input_layout,
            "input_dtype": self.input_dtype, "preprocessing": json.dumps(self.preprocessing),
            "class_names": json.dumps(self.class_names), "weights_sha256": self.weights_sha256,
            "weights_source": self.weights_source, "opset": str(self.opset),
            "verification": json.dumps(self.verification), "output": self.output,
            "input_polarity": self.input_polarity, "resize": self.resize, "precision": self.precision,
            "quantization": json.dumps(self.quantization), "accuracy": json.dumps(self.accuracy),
        }
        props |= {f"{lib}_version": v for lib, v in self.versions.items()}
        return {PREFIX + k: str(v) for k, v in props.items() if v is not None}


# -- what a file's metadata may say ------------------------------------------------------------
# An ONNX file may come from anywhere: every zoo.* key is checked against this table
# when the file is read, before anything is allocated from it. To add a key, add its
# checker here (`KEYS["precision"] = Str(choices=(...))`): unknown zoo.* keys are
# kept (a newer zoo may write more) but bounded by MAX_VALUE.

MAX_VALUE = 1 << 20  # characters in any one metadata value (class_names aside)
MAX_CHANNELS = 64
MAX_SIDE = 4096  # pixels: zoo's models take tiny inputs (28x28, 32x32)
MAX_STATIC_BATCH = 1 << 16
INPUT_DTYPES = ["float32", "uint8"]  # extend for new input kinds (float16, ...)

PREPROCESSING = Obj({
    "scale": Num(positive=True), "mean": List(Num(finite=True), max_items=MAX_CHANNELS),
    "std": List(Num(positive=True), max_items=MAX_CHANNELS), "in_graph": Bool(), "formula": Str(),
}, required=("mean", "std"))

KEYS: dict[str, Checker] = {
    "version": Str(max_len=64), "plugin": Str(max_len=256), "plugin_version": Str(max_len=256),
    "model": Str(name=True), "dataset": DATASET, "dataset_variant": Str(max_len=4096),
    "input_name": Str(max_len=256), "output_name": Str(max_len=256),
    "input_shape": JsonText(Optional(List(Anything(), length=4))),  # checked in detail by check_input_shape
    "input_layout": Str(choices=(LAYOUT,)), "input_dtype": Str(max_len=32),
    "preprocessing": JsonText(Optional(PREPROCESSING)),
    "class_names": JsonText(Optional(class_names()), max_len=32 << 20),
    "weights_sha256": Str(pattern=r"[0-9a-f]{64}"), "weights_source": Str(),
    "opset": Str(pattern=r"[0-9]{1,3}"), "verification": JsonText(Optional(Obj())),
    "output": Str(max_len=64), "input_polarity": Str(choices=("light-on-dark", "natural")), "resize": Str(),
    "precision": Str(choices=PRECISIONS), "quantization": JsonText(Optional(Obj())),
    "accuracy": JsonText(Optional(Obj())),
}
VERSION_KEY = Str(max_len=256)  # torch_version, onnx_version, ...


def _check(key: str, value: str) -> object:
    checker = KEYS.get(key) or (VERSION_KEY if key.endswith("_version") else Str(max_len=MAX_VALUE))
    return checker.check(value, key)


def check_input_shape(shape: list) -> list:
    """[batch or N, C, H, W] within zoo's bounds."""
    batch, *chw = shape
    if not (batch == BATCH_AXIS or (isinstance(batch, int) and not isinstance(batch, bool)
                                    and 1 <= batch <= MAX_STATIC_BATCH)):
        raise SchemaError("input_shape[0]", f"must be \"{BATCH_AXIS}\" or a batch size 1..{MAX_STATIC_BATCH}")
    Int(min=1, max=MAX_CHANNELS).check(chw[0], "input_shape[1]")
    for i, side in enumerate(chw[1:], 2):
        Int(min=1, max=MAX_SIDE).check(side, f"input_shape[{i}]")
    return shape


def validated_props(props: dict[str, str], where: str) -> dict[str, object]:
    """Our keys (without the prefix), each checked and parsed; ExportError naming the key."""
    get = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
    try:
        parsed = {key: _check(key, value) for key, value in get.items()}
        if parsed.get("input_shape") is not None:
            check_input_shape(parsed["input_shape"])
            channels = parsed["input_shape"][1]
            for name in ("mean", "std"):
                got = len((parsed.get("preprocessing") or {}).get(name, [None] * channels))
                if got != channels:
                    raise SchemaError(f"preprocessing.{name}", f"has {got} values for {channels} input channels")
        if parsed.get("input_dtype") is not None and parsed["input_dtype"] not in INPUT_DTYPES:
            raise SchemaError("input_dtype", f"'{for_display(parsed['input_dtype'], 40)}' is not one of "
                                             f"{', '.join(INPUT_DTYPES)}")
    except SchemaError as exc:
        raise ExportError(f"{for_display(where)}: metadata key '{PREFIX}{for_display(exc.path, 80)}' "
                          f"{exc.message}; the file is damaged or not a zoo export") from exc
    return parsed


def facts_from_props(props: dict[str, str], where: str = "the ONNX file") -> ExportFacts | None:
    """Parse and check `metadata_props` (as a dict); None when the file was not written by zoo."""
    get = validated_props(props, where)
    if "model" not in get:
        return None
    opset = get.get("opset")
    return ExportFacts(
        model=get["model"], zoo_version=get.get("version"), plugin=get.get("plugin"),
        plugin_version=get.get("plugin_version"), dataset=get.get("dataset"),
        dataset_variant=get.get("dataset_variant"), input_name=get.get("input_name", INPUT_NAME),
        output_name=get.get("output_name", OUTPUT_NAME), input_shape=get.get("input_shape"),
        input_layout=get.get("input_layout", LAYOUT), input_dtype=get.get("input_dtype", "float32"),
        preprocessing=get.get("preprocessing") or {}, class_names=get.get("class_names"),
        weights_sha256=get.get("weights_sha256"), weights_source=get.get("weights_source"),
        opset=int(opset) if opset else None,
        versions={k[:-len("_version")]: v for k, v in get.items()
                  if k.endswith("_version") and k not in ("plugin_version",)},
        verification=get.get("verification") or {}, output=get.get("output", OUTPUT_KIND),
        input_polarity=get.get("input_polarity"), resize=get.get("resize"),
        precision=get.get("precision", "fp32"), quantization=get.get("quantization") or {},
        accuracy=get.get("accuracy") or {},
    )


def _graph_dims(value_info) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def check_against_graph(facts: ExportFacts, model_proto, where: str) -> None:
    """The metadata must describe the graph it sits in: the input's channels and size,
    and one class name per output. A file claiming 100000x100000 for a 28x28 graph is
    refused here, before any image is resized to it."""
    graph = model_proto.graph
    bad = None
    if facts.input_shape is not None and graph.input:
        dims = _graph_dims(graph.input[0])
        if len(dims) != 4 or any(d is not None and d != m for d, m in zip(dims[1:], facts.input_shape[1:])):
            bad = ("input_shape", f"says {facts.input_shape} but the graph's input is "
                                  f"{[d if d is not None else '?' for d in dims]}")
    if bad is None and facts.class_names is not None and graph.output:
        dims = _graph_dims(graph.output[0])
        if dims and dims[-1] is not None and dims[-1] != len(facts.class_names):
            bad = ("class_names", f"has {len(facts.class_names)} names but the graph has {dims[-1]} outputs")
    if bad is not None:
        raise ExportError(f"{for_display(where)}: metadata key '{PREFIX}{bad[0]}' {bad[1]}; "
                          "the file is damaged or was edited")


def props_of(model_proto) -> dict[str, str]:
    return {p.key: p.value for p in model_proto.metadata_props}


def set_props(model_proto, props: dict[str, str]) -> None:
    """Replace our keys in `metadata_props`, keeping anyone else's."""
    keep = [(p.key, p.value) for p in model_proto.metadata_props if p.key not in props]
    del model_proto.metadata_props[:]
    for key, value in keep + sorted(props.items()):
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value


def preprocessing_of(mean, std, in_graph: bool) -> dict:
    return {"scale": SCALE, "mean": list(mean), "std": list(std), "in_graph": in_graph,
            "formula": "(pixel / 255 - mean) / std per channel" + (", inside the graph" if in_graph else "")}
