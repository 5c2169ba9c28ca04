"""Figures without a display: the object-oriented Figure API on the Agg canvas, no
pyplot global state (safe in tests, threads and headless servers), saved atomically."""
from __future__ import annotations

import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..fileio import atomic_path

DPI = 110
# Readable defaults for a person looking at the PNG at 100% zoom.
STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}


def new_figure(width: float, height: float, **kwargs) -> Figure:
    """A Figure (inches) with its own Agg canvas; layout="constrained" keeps labels from overlapping."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout=kwargs.pop("layout", "constrained"), **kwargs)
    FigureCanvasAgg(fig)
    return fig


def styled():
    """Context manager applying STYLE; rcParams are read when axes are created and drawn,
    so plotting functions build and save their figure inside it."""
    import matplotlib

    return matplotlib.rc_context(STYLE)


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write the figure as an RGB PNG atomically (a temp file renamed into place).
    Agg renders RGBA; the background is opaque white, so the alpha channel is dropped."""
    from PIL import Image

    path = Path(path)
    buffer = io.BytesIO()
    with styled():
        fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    buffer.seek(0)
    with Image.open(buffer) as img, atomic_path(path) as tmp:
        img.convert("RGB").save(tmp, format="PNG", optimize=True)
    return path


def percent_axis(ax) -> None:
    """Percent labels on the y axis with as many decimals as its range needs: a run stuck
    near 10% reads 9.0% 9.5% 10.0%, not 9% 9% 10% 10% (call it once the data are drawn)."""
    from matplotlib.ticker import PercentFormatter

    low, high = ax.get_ylim()
    span = high - low
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0 if span >= 5 else 1 if span >= 0.5 else 2))
