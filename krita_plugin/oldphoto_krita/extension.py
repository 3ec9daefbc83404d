"""The Krita extension: registers Tools > Scripts > "Restore Old Photo…" (action ``oldphoto_restore``)."""

from __future__ import annotations

from krita import Extension, Krita

from .gui import RestoreRun

ACTION = "oldphoto_restore"


class RestoreExtension(Extension):
    def __init__(self, parent) -> None:
        super().__init__(parent)
        self.runs: list[RestoreRun] = []

    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:
        action = window.createAction(ACTION, "Restore Old Photo…", "tools/scripts")
        action.setToolTip("Restore a damaged old photo into a new layer (oldphoto)")
        action.triggered.connect(self.run)

    def run(self) -> None:
        self.runs = [r for r in self.runs if r.job is not None and not r.job.done.is_set()]
        run = RestoreRun(Krita.instance())
        self.runs.append(run)  # kept alive while its job and timer run
        run.start()
