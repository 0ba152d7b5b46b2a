"""The terminal side of ``phonefleet``: its console and a live list of steps with a spinner."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

console = Console()


class Step:
    def __init__(self, progress: Progress, label: str) -> None:
        self._progress = progress
        self._label = label
        self._task = progress.add_task(label, total=1)
        self.finished = False

    def done(self, detail: str = "") -> None:
        self.finished = True
        suffix = f" [dim]{escape(detail)}[/dim]" if detail else ""
        self._progress.update(
            self._task, completed=1, description=f"[green]✓[/green] {self._label}{suffix}"
        )

    def failed(self) -> None:
        self.finished = True
        self._progress.update(self._task, completed=1, description=f"[red]✗[/red] {self._label}")


class Steps:
    """A live list of steps with a spinner on the running one."""

    def __enter__(self) -> Steps:
        self._progress = Progress(
            SpinnerColumn(finished_text=""),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[Step]:
        step = Step(self._progress, label)
        try:
            yield step
        except typer.Exit:
            step.failed()
            raise
        except Exception as error:
            step.failed()
            if os.environ.get("PHONEFLEET_DEBUG"):
                raise
            self._progress.stop()
            console.print(f"[red]{label} failed:[/red] {escape(str(error))}", highlight=False)
            raise typer.Exit(1) from error
        if not step.finished:
            step.done()
