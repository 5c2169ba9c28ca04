"""Edits of the QDQ graph quantize_static writes: float logits, and what the file need not carry.

Both keep what ONNX Runtime fuses (QLinearConv, QGemm) and only remove: the
requantization of the graph output, and opset imports no node uses.
"""
from __future__ import annotations


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
