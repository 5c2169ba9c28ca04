"""Turn a failed export into one sentence: which layer, which operator, what to try.

The torch exporter's own messages are long and generic ("submit a PR to PyTorch").
Two stages can fail:
1. torch.export traces forward(): we find the layer from the traceback frames
   (the innermost `self` that is a submodule) and the source line;
2. conversion to ONNX: the message names the aten/prims operator; the node with
   that operator in the ExportedProgram says which layer (`nn_module_stack`).
"""
from __future__ import annotations

import re

OP_PATTERNS = (
    re.compile(r"OpOverload\(op='([\w.]+)'"),
    re.compile(r"target=torch\.ops\.([\w.]+)"),
    re.compile(r"\b(aten::\w+)"),
)
SOURCE_PATTERN = re.compile(r'File "([^"]+)", line (\d+), in (\w+)\n\s*(.+)')


def _summary(text: str) -> str:
    """The exporter's 'Exception summary' line, else the first meaningful line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("<class "):
            return re.sub(r"^<class '(?:[\w.]+\.)?(\w+)'>:\s*", r"\1: ", ln)
    return next((ln for ln in lines if not ln.startswith("Failed to")), lines[0] if lines else "")


def _layer_from_traceback(exc: BaseException, module) -> str | None:
    """The innermost submodule whose forward() was running when the exception was raised."""
    names = {id(m): (n, type(m).__name__) for n, m in module.named_modules() if n}
    found = None
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        tb = err.__traceback__
        while tb is not None:
            owner = tb.tb_frame.f_locals.get("self")
            if id(owner) in names:
                found = names[id(owner)]
            tb = tb.tb_next
        err = err.__cause__ or err.__context__
    return f"layer '{found[0]}' ({found[1]})" if found else None


def _source(text: str) -> str | None:
    matches = SOURCE_PATTERN.findall(text)
    if not matches:
        return None
    file, line, _, code = matches[-1]
    return f"{file.rsplit('/', 1)[-1]}:{line} `{code.strip()}`"


def explain_trace_failure(exc: BaseException, module) -> str:
    text = str(exc)
    where = ", ".join(w for w in (_layer_from_traceback(exc, module), _source(text)) if w)
    at = f" in {where}" if where else ""
    if "Constraints violated" in text or "specialized it to be a constant" in text:
        return (f"the model fixes the batch size in its forward(){at}, so the batch axis cannot be dynamic: "
                "make forward() batch-agnostic (e.g. x.flatten(1) instead of x.view(64, -1)) "
                "or export with --static-batch N")
    return (f"torch.export cannot trace the model{at}: {_summary(text)}. Try: replace Python control flow "
            "on tensor values with torch.where/torch.cond and avoid .item()/numpy in forward() "
            "(see https://pytorch.org/docs/stable/export.html)")


def operator_of(text: str) -> str | None:
    for pattern in OP_PATTERNS:
        found = pattern.search(text)
        if found:
            return found.group(1)
    return None


def _layer_of_operator(op: str, exported) -> str | None:
    """The layer whose traced code contains `op` (matched on its base name: prims.zeta ~ special_zeta)."""
    base = op.split("::")[-1].split(".")[1 if "." in op else 0] if op else ""
    if not base or exported is None:
        return None
    for node in exported.graph.nodes:
        if node.op == "call_function" and base in str(node.target):
            stack = node.meta.get("nn_module_stack") or {}
            path, kind = list(stack.values())[-1] if stack else ("", "")
            name = path.split("L['self'].")[-1] if path else ""
            kind = str(kind).rsplit(".", 1)[-1]
            return f"layer '{name}' ({kind})" if name else "the model's own forward()"
    return None


def explain_conversion_failure(exc: BaseException, exported, opset: int) -> str:
    text = str(exc)
    op = operator_of(text)
    where = _layer_of_operator(op, exported) if op else None
    what = f"operator {op}" if op else "the model"
    at = f" (in {where})" if where else ""
    others = ", ".join(str(o) for o in (17, 18, 20, 23) if o != opset)
    return (f"cannot convert {what}{at} to ONNX opset {opset}: {_summary(text)}. Try: another --opset "
            f"({others}), newer torch/onnxscript, or rewrite that layer with operators ONNX supports")
