"""Layer output shapes three ways: declared by the plugin, worked out with the
conv/pool output-size formulas, and measured by a real forward pass.

The formula for each layer is applied to the shape that actually flows into it
(recorded by forward hooks), so it also works for models that are not a plain
Sequential stack (residual blocks, reused modules, functional glue in forward).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import describe
from .spec import ModelSpec

Shape = tuple[int, ...]

# Layers whose output shape equals their input shape.
SAME_SHAPE = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
    nn.modules.dropout._DropoutNd, nn.Identity,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softmax, nn.LogSoftmax, nn.Softplus,
)


@dataclass
class AxisFormula:
    """One spatial axis of a conv/pool layer: numbers in, text and result out."""

    size: int
    kernel: int
    stride: int
    padding: int
    dilation: int = 1
    ceil_mode: bool = False
    output_padding: int = 0
    transposed: bool = False

    def result(self) -> int:
        if self.transposed:
            return ((self.size - 1) * self.stride - 2 * self.padding + self.dilation * (self.kernel - 1)
                    + self.output_padding + 1)
        span = self.size + 2 * self.padding - self.dilation * (self.kernel - 1) - 1
        out = (math.ceil(span / self.stride) if self.ceil_mode else span // self.stride) + 1
        # PyTorch drops a last window that would start entirely in the right padding.
        if self.ceil_mode and (out - 1) * self.stride >= self.size + self.padding:
            out -= 1
        return out

    def text(self) -> str:
        if self.transposed:
            return (f"({self.size} - 1)*{self.stride} - 2*{self.padding} + {self.dilation}*({self.kernel} - 1)"
                    f" + {self.output_padding} + 1 = {self.result()}")
        if self.dilation == 1:
            numerator = f"{self.size} + 2*{self.padding} - {self.kernel}"
        else:
            numerator = f"{self.size} + 2*{self.padding} - {self.dilation}*({self.kernel} - 1) - 1"
        span = self.size + 2 * self.padding - self.dilation * (self.kernel - 1) - 1
        if self.ceil_mode:
            body = f"ceil(({numerator})/{self.stride})"
        elif span % self.stride:
            body = f"floor(({numerator})/{self.stride})"
        else:
            body = f"({numerator})/{self.stride}"
        text = f"{body} + 1 = {self.result()}"
        if self.ceil_mode and self.result() != math.ceil(span / self.stride) + 1:
            text += " (last window would start in the padding)"
        return text


def _per_axis(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


@dataclass
class Rule:
    """What the formula engine says about one layer."""

    settings: str = ""  # e.g. "k=5 s=1 p=2 d=1"
    formula: str = ""  # numbers filled in
    shape: Shape | None = None  # None: no rule for this layer type


def _conv_or_pool_rule(module: nn.Module, in_shape: Shape) -> Rule:
    spatial = in_shape[1:]
    dims = len(spatial)
    is_conv = isinstance(module, nn.modules.conv._ConvNd)
    kernel = _per_axis(module.kernel_size, dims)
    stride = _per_axis(module.stride if module.stride is not None else module.kernel_size, dims)
    dilation = _per_axis(getattr(module, "dilation", 1), dims)
    padding = module.padding
    if padding == "valid":
        padding = 0
    if padding == "same":  # PyTorch allows 'same' only with stride 1: the size is kept
        return Rule(f"k={_fmt(kernel)} s={_fmt(stride)} p=same d={_fmt(dilation)}",
                    f"'same' padding keeps {_fmt(spatial, 'x')}", (module.out_channels, *spatial))
    padding = _per_axis(padding, dims)
    transposed = is_conv and module.transposed
    output_padding = _per_axis(getattr(module, "output_padding", 0), dims)
    ceil_mode = bool(getattr(module, "ceil_mode", False))
    axes = [AxisFormula(spatial[i], kernel[i], stride[i], padding[i], dilation[i], ceil_mode,
                        output_padding[i], transposed) for i in range(dims)]
    texts = [a.text() for a in axes]
    formula = texts[0] if len(set(texts)) == 1 else "; ".join(f"{ax}: {t}" for ax, t in zip("HWD"[:dims] if dims > 1 else "L", texts))
    channels = module.out_channels if is_conv else in_shape[0]
    settings = f"k={_fmt(kernel)} s={_fmt(stride)} p={_fmt(padding)} d={_fmt(dilation)}" + (" ceil" if ceil_mode else "")
    return Rule(settings, formula, (channels, *(a.result() for a in axes)))


def param_formula(module: nn.Module) -> str:
    """How a layer's parameter count comes about, with its numbers: a conv has one
    kernel (k x k x input channels) per output channel plus one bias each."""
    total = sum(p.numel() for p in module.parameters(recurse=True))
    if total == 0:
        return ""
    bias = getattr(module, "bias", None)
    plus = lambda n: f" + {n:,}" if bias is not None else ""  # noqa: E731
    if isinstance(module, nn.modules.conv._ConvNd):
        w = module.weight.shape  # (out, in/groups, *kernel); transposed: (in, out/groups, *kernel)
        kernel = " x ".join(str(k) for k in w[2:])
        outs, per = (w[0], w[1]) if not module.transposed else (w[1] * module.groups, w[0] // module.groups)
        return f"{outs:,} x ({kernel} x {per:,}){plus(outs)} = {total:,}"
    if isinstance(module, nn.Linear):
        return f"{module.out_features:,} x {module.in_features:,}{plus(module.out_features)} = {total:,}"
    if isinstance(module, nn.modules.batchnorm._NormBase) and module.affine:
        return f"2 x {module.num_features:,} (scale and shift per channel) = {total:,}"
    shapes = " + ".join("x".join(map(str, p.shape)) for p in module.parameters(recurse=True))
    return f"{shapes} = {total:,}"


def _fmt(values: tuple[int, ...], sep: str = ",") -> str:
    return str(values[0]) if len(set(values)) == 1 and sep == "," else sep.join(map(str, values))


def rule_for(module: nn.Module, in_shape: Shape) -> Rule:
    """The output shape (batch excluded) that `module` should produce for `in_shape`."""
    conv_pool = (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)
    if isinstance(module, conv_pool):
        return _conv_or_pool_rule(module, in_shape)
    if isinstance(module, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)):
        size = _per_axis(module.output_size, len(in_shape) - 1)
        size = tuple(s if o is None else o for s, o in zip(in_shape[1:], size))
        return Rule(f"out={_fmt(size, 'x')}", f"adaptive: output size {_fmt(size, 'x')}", (in_shape[0], *size))
    if isinstance(module, nn.Linear):
        ok = in_shape[-1] == module.in_features
        note = "" if ok else f" (but the input has {in_shape[-1]} features)"
        return Rule(f"{module.in_features}->{module.out_features}",
                    f"{module.in_features} -> {module.out_features}{note}", (*in_shape[:-1], module.out_features))
    if isinstance(module, nn.Flatten):
        full = (1, *in_shape)  # the rule is defined with the batch dimension
        start, end = module.start_dim % len(full), module.end_dim % len(full)
        flat = math.prod(full[start:end + 1])
        shape = (*full[:start], flat, *full[end + 1:])[1:]
        return Rule(f"dims {module.start_dim}..{module.end_dim}", f"{'*'.join(map(str, in_shape))} = {flat}", shape)
    if isinstance(module, SAME_SHAPE):
        return Rule("", "same as input", tuple(in_shape))
    return Rule()


@dataclass
class LayerCheck:
    name: str
    kind: str
    settings: str = ""
    formula: str = ""
    input_shape: Shape | None = None
    formula_shape: Shape | None = None
    declared: Shape | None = None
    actual: Shape | None = None
    params: int = 0
    param_formula: str = ""  # e.g. "6 x (5 x 5 x 1) + 6 = 156"
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()} | {"ok": self.ok}


@dataclass
class ShapeReport:
    model: str
    input_shape: Shape
    layers: list[LayerCheck] = field(default_factory=list)
    error: str | None = None  # the forward pass itself failed
    output: Shape | None = None  # the model's output shape, without the batch dimension

    @property
    def ok(self) -> bool:
        return self.error is None and all(layer.ok for layer in self.layers)

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def first_problem(self) -> str | None:
        if self.error:
            return f"{self.model}: {self.error}"
        return next((f"{self.model}: {layer.problem}" for layer in self.layers if layer.problem), None)

    def as_dict(self) -> dict:
        return {"model": self.model, "input_shape": list(self.input_shape), "ok": self.ok,
                "error": self.first_problem(), "params": self.total_params,
                "layers": [layer.as_dict() for layer in self.layers]}


def shape_text(shape: Shape | None) -> str:
    return "-" if shape is None else "x".join(map(str, shape))


def _trace(model: nn.Module, input_shape: Shape, watch: dict[str, nn.Module]):
    """Run one example through `model`, recording each watched module's first input and
    output shapes. Returns (records, error text or None)."""
    records: dict[str, tuple[Shape, Shape]] = {}
    entered: list[str] = []
    handles = []
    for name, module in watch.items():
        def pre(mod, args, name=name):
            entered.append(name)

        def post(mod, args, output, name=name):
            if name not in records and args and isinstance(output, torch.Tensor):
                records[name] = (tuple(args[0].shape[1:]), tuple(output.shape[1:]))
        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    error, output = None, None
    try:
        with torch.no_grad():
            result = model(torch.zeros(1, *input_shape))
        output = tuple(result.shape[1:]) if isinstance(result, torch.Tensor) else None
    except Exception as exc:  # the user's model may fail in any way; report where
        where = f" at layer '{entered[-1]}' ({type(watch[entered[-1]]).__name__})" if entered else ""
        error = f"forward pass of a 1x{shape_text(input_shape)} input failed{where}: {describe(exc)}"
    finally:
        for h in handles:
            h.remove()
    return records, entered, error, output


def check_model(model: nn.Module, name: str, input_shape: Shape, declared: dict[str, Shape]) -> ShapeReport:
    """Compare declared, formula and actual output shapes of every layer of `model`."""
    model.eval()
    modules = dict(model.named_modules())
    leaves = {n: m for n, m in modules.items() if n and not any(True for _ in m.children())}
    watch = leaves | {n: modules[n] for n in declared if n in modules}
    records, entered, error, output = _trace(model, tuple(input_shape), watch)
    report = ShapeReport(name, tuple(input_shape), error=error, output=output)
    order = list(dict.fromkeys(n for n in entered if n in records))
    order += [n for n in declared if n in modules and n not in records]
    for layer_name in order:
        report.layers.append(_check_layer(layer_name, modules[layer_name], records.get(layer_name), declared))
    for missing in (n for n in declared if n not in modules):
        close = ", ".join(n for n in leaves if n.split(".")[-1] == missing.split(".")[-1]) or ", ".join(list(leaves)[:6])
        report.layers.append(LayerCheck(missing, "?", declared=declared[missing], problem=(
            f"declared layer '{missing}' does not exist in the model; fix the name in layer_shapes (layers: {close}, ...)")))
    return report


def _check_layer(name: str, module: nn.Module, record, declared: dict[str, Shape]) -> LayerCheck:
    check = LayerCheck(name, type(module).__name__, declared=declared.get(name),
                       params=sum(p.numel() for p in module.parameters(recurse=True)))
    check.param_formula = param_formula(module)
    if record is None:
        check.problem = f"layer '{name}' is declared but never ran in the forward pass"
        return check
    check.input_shape, check.actual = record
    rule = rule_for(module, check.input_shape)
    check.settings, check.formula, check.formula_shape = rule.settings, rule.formula, rule.shape
    if check.formula_shape is not None and check.formula_shape != check.actual:
        check.problem = (f"layer '{name}' ({check.kind}) output {shape_text(check.actual)} differs from the formula's "
                         f"{shape_text(check.formula_shape)} ({check.formula})")
    elif check.declared is not None and check.declared[1:] == check.actual and len(check.declared) > 1:
        check.problem = (f"layer '{name}' ({check.kind}) outputs {shape_text(check.actual)} but the plugin declares "
                         f"{shape_text(check.declared)}: leave out the batch dimension, declare "
                         f"{shape_text(check.actual)} in layer_shapes")
    elif check.declared is not None and check.declared != check.actual:
        check.problem = (f"layer '{name}' ({check.kind}) outputs {shape_text(check.actual)} but the plugin declares "
                         f"{shape_text(check.declared)}; fix layer_shapes or the layer ({check.settings or 'input ' + shape_text(check.input_shape)})")
    return check


def check_spec(spec: ModelSpec, model: nn.Module | None = None) -> ShapeReport:
    """Check a registered spec: build its model (unless given) and compare every layer."""
    report = check_model(model if model is not None else spec.build(), spec.name, spec.input_shape,
                         spec.declared_shapes)
    if report.error is None and report.output != (spec.num_classes,):
        got = f"{report.output[0]} values" if report.output and len(report.output) == 1 else \
            f"shape {shape_text(report.output)}"
        report.error = (f"the model outputs {got} per image but the spec declares {spec.num_classes} classes "
                        "(class_names); fix the model's last layer or the spec")
    return report

