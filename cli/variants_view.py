"""Terminal rendering of int8/fp16 exports (shared by export, verify and bench). No torch here."""
from __future__ import annotations

from .common import err, escape, out, show_report

SLOWER = 1.0  # a ratio below this means the converted file is not faster here


def show_quantized(report, options) -> None:
    if report.verification is not None:
        show_report(report.verification)
    if not report.written:
        err.print(f"[bold red]error:[/] {escape(report.path)} was not written: the {report.precision} file fails "
                  "the accuracy check (nothing was left behind; an earlier file there is kept). Try another "
                  "--calibration-method, more --calibration images, or --quantize fp16", soft_wrap=True)
        return
    size = report.size_bytes / 1e6
    smaller = f", {report.size_bytes / report.fp32_size_bytes:.2f}x the fp32 size" if report.fp32_size_bytes else ""
    pixels = ", uint8 pixels in" if options.raw_input else ""
    out.print(f"[green]✓[/] exported {report.model} ({report.precision}) -> {escape(report.path)} "
              f"({size:.2f} MB{smaller}{pixels}, {report.seconds:.1f} s)", soft_wrap=True)
    if report.verification is None:
        out.print("[yellow]not verified[/] (--no-verify): check it with "
                  f"`zoo verify {report.model} --onnx {escape(report.path)}`", soft_wrap=True)
    show_speed(report.speed, report.precision)


def show_speed(speed, label: str) -> None:
    """The measured speed ratio against fp32, and a warning when the file is not faster here."""
    if speed is None:
        return
    ratio = speed.ratio(label)
    if ratio is None:
        return
    one, big = ratio
    by = {t.label: t for t in speed.timings}
    providers = ", ".join(by[label].providers)
    out.print(f"speed vs fp32 on this machine ({providers}, {speed.threads} threads, load average "
              f"{speed.load_before[0]:.2f}): {one:.2f}x at batch 1 ({by['fp32'].batch1_ms:.3f} -> "
              f"{by[label].batch1_ms:.3f} ms), {big:.2f}x at batch {by[label].big_batch}", soft_wrap=True)
    if min(one, big) < SLOWER:
        where = "at batch 1" if one < SLOWER and big >= SLOWER else \
            f"at batch {by[label].big_batch}" if big < SLOWER and one >= SLOWER else "at batch 1 and in batches"
        why = " (fp16 arithmetic is emulated on most CPUs; it pays on CUDA)" if label == "fp16" else \
            " (quantize/dequantize overhead outweighs the int8 arithmetic on a model this small)"
        err.print(f"[yellow]warning:[/] the {label} file is not faster than fp32 here {where}{why}; "
                  "it is smaller. Measure on the target machine: `zoo bench NAME`", soft_wrap=True)


def show_variants(speed) -> None:
    """`zoo bench`: every exported variant, timed side by side."""
    from rich.table import Table

    base = next((t for t in speed.timings if t.label.split()[0] == "fp32"), speed.timings[0])
    big = speed.timings[0].big_batch
    table = Table(title=f"exported variants: ONNX Runtime, {speed.threads} threads, interleaved, medians")
    for column in ("variant", "providers", "size MB", "vs fp32", "batch 1 ms", "speed-up", f"batch {big} img/s",
                   "speed-up"):
        table.add_column(column, justify="left" if column in ("variant", "providers") else "right")
    for t in speed.timings:
        table.add_row(t.label, ", ".join(t.providers), f"{t.size_bytes / 1e6:.2f}",
                      f"{t.size_bytes / base.size_bytes:.2f}x", f"{t.batch1_ms:.3f}",
                      f"{base.batch1_ms / t.batch1_ms:.2f}x", f"{t.throughput:,.0f}",
                      f"{base.big_batch_ms / t.big_batch_ms:.2f}x")
    out.print(table)
    out.print(f"[dim]load average {speed.load_before[0]:.2f} before, {speed.load_after[0]:.2f} after (1 min); "
              "a speed-up below 1.00x means slower than fp32 on this machine[/]", soft_wrap=True)
