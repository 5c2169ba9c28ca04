"""Showing zoo.imagefolder's DecodeProgress events: a rich bar on a terminal, one line
when done elsewhere, nothing when quiet. Any command that loads a folder of images uses it."""
from __future__ import annotations

from rich.markup import escape

from .common import err


class DecodeDisplay:
    def __init__(self, quiet: bool = False, live: bool | None = None):
        self.quiet = quiet
        self.live = err.is_terminal if live is None else live
        self.progress = None
        self.tasks: dict[str, int] = {}

    def __call__(self, event) -> None:
        self.update(event)

    def update(self, e) -> None:
        if self.quiet:
            return
        if e.cached:
            err.print(f"[dim]{escape(e.folder)}: {e.total:,} images from the decoded-image cache[/]", soft_wrap=True)
            return
        if self.live:
            self._bar(e)
        if e.done >= e.total:
            self._finished(e)

    def _bar(self, e) -> None:
        if self.progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("[bold]decoding[/] {task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeRemainingColumn(), console=err, transient=True)
            self.progress.start()
        if e.folder not in self.tasks:
            self.tasks[e.folder] = self.progress.add_task(escape(e.folder), total=e.total)
        self.progress.update(self.tasks[e.folder], completed=e.done)

    def _finished(self, e) -> None:
        seconds = max(e.seconds, 1e-9)
        if self.progress is not None and e.folder in self.tasks:
            self.progress.remove_task(self.tasks.pop(e.folder))
        line = f"decoded {e.total:,} images in {escape(e.folder)} ({seconds:.1f} s, {e.total / seconds:,.0f}/s)"
        (self.progress.console if self.progress else err).print(f"[dim]{line}[/]", soft_wrap=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def __enter__(self) -> "DecodeDisplay":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
