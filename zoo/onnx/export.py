"""PyTorch model -> checked, self-describing ONNX bytes, with the current exporter.

Two steps, so a failure can name its layer: `torch.export.export` traces forward()
(batch axis dynamic unless a static batch is asked for), then
`torch.onnx.export(exported_program, dynamo=True)` converts it (onnxscript) and
optimises it. The ModelProto is kept in memory: metadata is added, the ONNX
checker runs in full, and the caller writes one self-contained file (weights
inside, no external-data file: these models are far below protobuf's 2 GB limit).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import zoo

from ..errors import ExportError, UsageError, describe
from ..preprocess import Normalize, normalize
from ..runs import Weights
from ..spec import ModelSpec
from . import diagnose
from .defaults import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from .metadata import BATCH_AXIS, INPUT_NAME, OUTPUT_NAME, RESIZE_RULE, ExportFacts, polarity_of, preprocessing_of, \
    set_props
from .quiet import captured
from .runtime import check_model

PROTOBUF_LIMIT = 2 * 1024**3


# A fixed batch is traced and verified whole: 4096 MNIST images are 13 MB of input (plus
# activations), 10**8 would be hundreds of GB. Bigger batches: the dynamic axis.
MAX_STATIC_BATCH = 4096


@dataclass
class ExportOptions:
    opset: int = DEFAULT_OPSET
    static_batch: int | None = None  # None: the batch axis is dynamic
    raw_input: bool = False  # uint8 pixels in, preprocessing inside the graph

    def __post_init__(self) -> None:
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise UsageError(f"--opset {self.opset} is not supported: use {MIN_OPSET}..{MAX_OPSET} "
                             f"(default {DEFAULT_OPSET})")
        if self.static_batch is not None and not 1 <= self.static_batch <= MAX_STATIC_BATCH:
            raise UsageError(f"--static-batch must be 1..{MAX_STATIC_BATCH}, got {self.static_batch}: tracing and "
                             "verifying a fixed batch holds all of it in memory at once; for big batches keep "
                             "the default dynamic batch axis")


class RawInput(nn.Module):
    """uint8 pixels in, the model's logits out: the eval preprocessing (zoo.preprocess.Normalize)
    lives in the graph."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.normalize = Normalize(mean, std)

    def forward(self, pixels):  # (b, C, H, W) uint8
        return self.model(self.normalize(pixels))


def inference_module(spec: ModelSpec, model: nn.Module, raw_input: bool) -> nn.Module:
    """What gets exported (and what PyTorch runs when verifying): eval mode, CPU."""
    model = model.eval()
    if raw_input:
        t = spec.eval_transforms
        return RawInput(model, t.mean, t.std).eval()
    return model


def model_input(spec: ModelSpec, images: torch.Tensor, raw_input: bool) -> torch.Tensor:
    """What the exported module takes for uint8 `images`: the pixels themselves for a
    --raw-input export (Normalize is inside it), else the normalised tensor."""
    return images if raw_input else normalize(images, spec.eval_transforms)


def example_input(spec: ModelSpec, batch: int, raw_input: bool, generator=None) -> torch.Tensor:
    shape = (batch, *spec.input_shape)
    if raw_input:
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return torch.randn(shape, generator=generator)


def trace(module: nn.Module, spec: ModelSpec, options: ExportOptions):
    """torch.export of forward(); a failure names the layer and what to try."""
    # Batch 2, not 1: torch.export specialises size-1 dimensions.
    batch = options.static_batch or 2
    example = example_input(spec, batch, options.raw_input)
    dynamic = None if options.static_batch else ({0: torch.export.Dim(BATCH_AXIS)},)
    check_forward(module, spec, example)
    try:
        with captured(), torch.no_grad():
            return torch.export.export(module, (example,), dynamic_shapes=dynamic, strict=False)
    except Exception as exc:  # torch.export raises many unrelated types
        raise ExportError(diagnose.explain_trace_failure(exc, module)) from exc


def check_forward(module: nn.Module, spec: ModelSpec, example: torch.Tensor) -> None:
    """A model whose plain forward pass already fails (a Linear with the wrong input size)
    has a shape mistake, not an export problem: name the layer as verify-shapes does."""
    try:
        with torch.no_grad():
            module(example)
    except Exception as exc:  # the user's model may fail in any way
        from ..shapes import check_spec

        inner = module.model if isinstance(module, RawInput) else module
        problem = check_spec(spec, inner).first_problem() or f"forward pass failed: {describe(exc)}"
        raise ExportError(f"{problem}; the model fails before export (a shape mismatch, not an export problem): "
                          f"`zoo verify-shapes {spec.name}` shows every layer") from exc


def convert(exported, options: ExportOptions):
    """ExportedProgram -> onnx.ModelProto at the requested opset."""
    try:
        with captured():
            program = torch.onnx.export(exported, (), dynamo=True, opset_version=options.opset,
                                        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], optimize=True)
            proto = program.model_proto
    except Exception as exc:
        raise ExportError(diagnose.explain_conversion_failure(exc, exported, options.opset)) from exc
    got = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if got != options.opset:
        raise ExportError(f"the exporter could not produce opset {options.opset} (it made opset {got}): "
                          f"use --opset {got} or the default {DEFAULT_OPSET}")
    name_batch_axis(proto)
    drop_trace_info(proto)
    return proto


def drop_trace_info(proto) -> None:
    """Remove what the exporter records on every node for debugging: the Python stack
    trace (with this machine's source paths), the FX node and module names. They are
    no part of the model, would publish local paths, and weighed 8.7 KB on lenet5, an
    eighth of its int8 file (which then missed the 0.3x-of-fp32 size target)."""
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""


def name_batch_axis(proto) -> None:
    """torch.export calls the dynamic batch axis 's77' or so; consumers read 'batch'."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    symbol = dims[0].dim_param if dims and dims[0].HasField("dim_param") else ""
    if not symbol:
        return
    for info in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info):
        for dim in info.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param == symbol:
                dim.dim_param = BATCH_AXIS


def facts_for(spec: ModelSpec, weights: Weights, options: ExportOptions) -> ExportFacts:
    import onnx
    import onnxruntime
    import onnxscript

    batch = options.static_batch or BATCH_AXIS
    return ExportFacts(
        model=spec.name, zoo_version=zoo.__version__, plugin=spec.plugin or None,
        plugin_version=spec.plugin_version or None, dataset=weights.dataset or spec.dataset,
        dataset_variant=weights.dataset_variant or "unknown",
        input_shape=[batch, *spec.input_shape], input_dtype="uint8" if options.raw_input else "float32",
        preprocessing=preprocessing_of(spec.eval_transforms.mean, spec.eval_transforms.std, options.raw_input),
        class_names=list(weights.class_names or spec.class_names), weights_sha256=weights.sha256, weights_source=weights.source,
        opset=options.opset,
        versions={"torch": torch.__version__, "onnx": onnx.__version__, "onnxscript": onnxscript.__version__,
                  "onnxruntime": onnxruntime.__version__},
        verification={"verdict": "not run"}, input_polarity=polarity_of(spec.input_shape[0]), resize=RESIZE_RULE,
    )


def build(spec: ModelSpec, weights: Weights, options: ExportOptions):
    """(checked ModelProto with metadata, the module that was exported)."""
    module = inference_module(spec, weights.model, options.raw_input)
    proto = convert(trace(module, spec, options), options)
    proto.doc_string = f"{spec.name}: {spec.summary} (exported by zoo {zoo.__version__})"
    set_props(proto, facts_for(spec, weights, options).to_props())
    if proto.ByteSize() >= PROTOBUF_LIMIT:
        raise ExportError(f"{spec.name} is {proto.ByteSize() / 1e9:.1f} GB, over protobuf's 2 GB limit for "
                          "one self-contained .onnx file")
    check_model(proto, f"the export of {spec.name}",
                "the exporter made an invalid model; try another --opset or newer torch/onnxscript")
    return proto, module


def serialize(proto) -> bytes:
    try:
        return proto.SerializeToString()
    except Exception as exc:  # e.g. protobuf size errors
        raise ExportError(f"cannot serialise the ONNX model: {describe(exc)}") from exc
