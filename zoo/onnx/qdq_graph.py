"""Edits of the QDQ graph quantize_static writes: float logits, and what the file need not carry.

All keep what ONNX Runtime fuses (QLinearConv, QGemm, uint8 MaxPool) and compute the same
numbers; they only remove: the requantization of the graph output, requantizations that
are exact identities, zero-valued optional inputs, annotations and opset imports no node
uses. Measured on the cnn (full Fashion-MNIST): 37,572 -> 35,954 bytes, the same logits
bit for bit, the same kernels in ONNX Runtime's profile.
"""
from __future__ import annotations

# Ops that only move or select values: on integers they give exactly the quantized values
# of what they give on the dequantized floats (MaxPool: dequantization is increasing).
INTEGER_EXACT = {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze"}
# Written by quant_pre_process to say it ran; nothing reads them once the file is quantized.
PREPROCESS_PROPS = ("onnx.infer", "onnx.quant.pre_process")


def _uses(graph) -> dict[str, int]:
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    return uses


def float_outputs(model) -> None:
    """Drop the QuantizeLinear -> DequantizeLinear pair in front of each graph output, so the
    node before it writes the output in float from its int32 accumulator. Quantized to
    256 steps between the calibration extremes, logits are clipped and tie for the top
    class (measured: zoo.onnx.quantize's docstring)."""
    graph = model.graph
    producer = {name: node for node in graph.node for name in node.output}
    uses = _uses(graph)
    for output in graph.output:
        dq = producer.get(output.name)
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        source = producer.get(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None
        if source is None or uses.get(q.input[0]) != 1 or uses.get(q.output[0]) != 1:
            continue  # the float tensor feeds something else too: leave the pair
        source.output[list(source.output).index(q.input[0])] = output.name
        graph.node.remove(q)
        graph.node.remove(dq)
    _drop_unused(graph)


def slim(model) -> None:
    """What quantize_static and quant_pre_process leave that a runtime does not need."""
    graph = model.graph
    _integer_passthrough(graph)
    _drop_zero_bias_points(graph)
    _drop_unused(graph)
    # Shape annotations from quant_pre_process's shape inference: ONNX Runtime infers them
    # again when it loads the file, and `onnx.shape_inference.infer_shapes` restores them.
    del graph.value_info[:]
    keep = [p for p in model.metadata_props if p.key not in PREPROCESS_PROPS]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)


def _integer_passthrough(graph) -> None:
    """DequantizeLinear -> MaxPool/Reshape/... -> QuantizeLinear with the same scale and zero
    point requantizes to the very integers it dequantized: run the op on the integers and
    drop the pair (ONNX Runtime drops it too when it loads the file, so the kernels are the same)."""
    while True:
        producer = {name: node for node in graph.node for name in node.output}
        consumers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        outputs = {o.name for o in graph.output}
        for op in graph.node:
            if op.op_type not in INTEGER_EXACT or len(op.output) != 1 or not op.input:
                continue
            dq, after = producer.get(op.input[0]), consumers.get(op.output[0], [])
            if dq is None or dq.op_type != "DequantizeLinear" or len(consumers[dq.output[0]]) != 1 \
                    or len(after) != 1 or after[0].op_type != "QuantizeLinear" or op.output[0] in outputs:
                continue
            q = after[0]
            if list(q.input[1:]) != list(dq.input[1:]) or q.output[0] in outputs:
                continue  # another scale or zero point (or axis): a real requantization
            if any(a.name == "axis" for a in q.attribute) or any(a.name == "axis" for a in dq.attribute):
                continue
            op.input[0] = dq.input[0]
            for node in consumers.get(q.output[0], []):
                node.input[:] = [op.output[0] if name == q.output[0] else name for name in node.input]
            graph.node.remove(dq)
            graph.node.remove(q)
            break
        else:
            return


def _drop_zero_bias_points(graph) -> None:
    """quantize_static gives each int32 bias's DequantizeLinear an all-zero int32 zero point,
    one per channel; the input is optional and 0 by default (weights' int8 zero points stay:
    ONNX Runtime's symmetric convolution kernel needs them as constants)."""
    from onnx import TensorProto, numpy_helper

    constants = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) != 3 or node.input[2] not in constants:
            continue
        point = constants[node.input[2]]
        if point.data_type == TensorProto.INT32 and not numpy_helper.to_array(point).any():
            del node.input[2]


def tidy(model) -> None:
    """ONNX Runtime's optimiser (quant_pre_process) declares nine opset domains (ai.onnx.ml,
    training, preview, nchwc, aten, ...) where the graph uses one or two: keep those."""
    used = {node.domain or "" for node in model.graph.node} | {""}
    keep = [o for o in model.opset_import if (o.domain or "") in used or o.domain == "ai.onnx"]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def _drop_unused(graph) -> None:
    """Initializers and value_info entries no node refers to any more."""
    used = set(_uses(graph)) | {o.name for o in graph.output}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    names = used | {name for node in graph.node for name in node.output}
    for info in [v for v in graph.value_info if v.name not in names]:
        graph.value_info.remove(info)
