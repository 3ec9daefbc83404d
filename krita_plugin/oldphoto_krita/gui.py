"""The Qt side of "Restore Old Photo…": dialog, progress with Cancel, message box, on Krita's GUI thread.

The worker call runs on a :class:`~.job.Job` thread; a ``QTimer`` on the GUI thread reads its
progress and, when it is done, writes the result (every Krita API call stays on the GUI thread).
"""

from __future__ import annotations

import json
import os

from . import layers, qt
from .client import bridge
from .controller import SETTINGS_GROUP, Plan, finish, guidance, make_plan, prepare, start_job, worker_config
from .job import Job
from .layers import LABEL, PluginError

POLL_MS = 100


class RestoreRun:
    """The action's whole interaction, on Krita's GUI thread; the worker call runs on a :class:`Job` thread."""

    def __init__(self, app) -> None:
        self.app = app
        self.job: Job | None = None
        self.added: list = []

    def start(self) -> None:
        try:
            doc = self.app.activeDocument()
            layers.paint_layer(doc)  # a bad layer is refused before the dialog
            others = [d for d in self.app.documents() if d != doc]  # the reference documents offered
            plan = self._ask(others)
            if plan is None:
                return
            config = worker_config(plan.python)
            self.source = prepare(doc, plan)
            guide = guidance(doc, self.source, plan, others)
        except (PluginError, bridge.OldPhotoError, ValueError) as exc:
            self._error(str(exc))
            return
        except Exception as exc:  # a bug: still a message box, never Krita's traceback dialog
            self._error(f"{LABEL} failed unexpectedly ({type(exc).__name__}: {exc}). Please report this.")
            return
        self.doc, self.plan = doc, plan
        self.job = start_job(config, self.source, plan, guide)
        self.progress = qt.QProgressDialog(f"{LABEL}: connecting to the oldphoto worker", "Cancel", 0, 1000,
                                           self._window())
        self.progress.setObjectName("oldphoto_progress")
        self.progress.setWindowTitle(LABEL)
        self.progress.setWindowModality(qt.WINDOW_MODAL)
        self.progress.setMinimumDuration(0)
        self.progress.canceled.connect(self.job.cancel)
        self.progress.show()
        self.timer = qt.QTimer()
        self.timer.timeout.connect(self._poll)
        self.timer.start(POLL_MS)

    def _poll(self) -> None:
        job = self.job
        if not job.done.is_set():
            self.progress.setValue(int(1000 * job.fraction))
            self.progress.setLabelText(f"{LABEL}: {job.message}")
            return
        self.timer.stop()
        cancelled = job.cancelled.is_set()
        self.progress.canceled.disconnect(job.cancel)  # closing a QProgressDialog emits canceled
        self.progress.close()
        if cancelled:
            return
        if job.error is not None:
            self._error(job.error)
            return
        try:
            self.added = finish(self.doc, self.source, self.plan, job)
        except Exception as exc:  # never a traceback dialog
            self._error(f"{LABEL} could not add the result ({type(exc).__name__}: {exc}). Please report this.")

    def _ask(self, others: list) -> Plan | None:
        from .dialog import RestoreDialog

        raw = self.app.readSetting(SETTINGS_GROUP, "dialog", "") or "{}"
        try:
            settings = json.loads(raw)
        except ValueError:
            settings = {}
        python = ""
        try:
            python = worker_config().python
        except bridge.OldPhotoError:
            pass  # not configured yet: the user may type the Python in the dialog
        titles = [os.path.basename(d.fileName()) or d.name() or f"Untitled {i + 1}" for i, d in enumerate(others)]
        dialog = RestoreDialog(self._window(), settings=settings, python=python, documents=titles)
        if not qt.exec_dialog(dialog):
            return None
        values = dialog.values()
        kept = {k: v for k, v in values.items() if k not in ("python", "reference_document")}  # documents change
        self.app.writeSetting(SETTINGS_GROUP, "dialog", json.dumps(kept))
        return make_plan(values)

    def _window(self):
        window = self.app.activeWindow()
        return window.qwindow() if window is not None else None

    def _error(self, message: str) -> None:
        box = qt.QMessageBox(qt.QMessageBox.Critical if qt.BINDING == "PyQt5" else qt.QMessageBox.Icon.Critical,
                             LABEL, message, parent=self._window())
        box.setObjectName("oldphoto_error")
        qt.exec_dialog(box)
