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
from typing import Any

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


def _json(value: str | None, default: Any) -> Any:
    if value is None:
        return default
    try:
        return json.loads(value)
    except ValueError:
        return default


def facts_from_props(props: dict[str, str]) -> ExportFacts | None:
    """Parse `metadata_props` (as a dict); None when the file was not written by zoo."""
    get = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
    if "model" not in get:
        return None
    opset = get.get("opset")
    return ExportFacts(
        model=get["model"], zoo_version=get.get("version"), plugin=get.get("plugin"),
        plugin_version=get.get("plugin_version"), dataset=get.get("dataset"),
        dataset_variant=get.get("dataset_variant"), input_name=get.get("input_name", INPUT_NAME),
        output_name=get.get("output_name", OUTPUT_NAME), input_shape=_json(get.get("input_shape"), None),
        input_layout=get.get("input_layout", LAYOUT), input_dtype=get.get("input_dtype", "float32"),
        preprocessing=_json(get.get("preprocessing"), {}), class_names=_json(get.get("class_names"), None),
        weights_sha256=get.get("weights_sha256"), weights_source=get.get("weights_source"),
        opset=int(opset) if opset and opset.isdigit() else None,
        versions={k[:-len("_version")]: v for k, v in get.items()
                  if k.endswith("_version") and k not in ("plugin_version",)},
        verification=_json(get.get("verification"), {}), output=get.get("output", OUTPUT_KIND),
        input_polarity=get.get("input_polarity"), resize=get.get("resize"),
        precision=get.get("precision", "fp32"), quantization=_json(get.get("quantization"), {}),
        accuracy=_json(get.get("accuracy"), {}),
    )


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
