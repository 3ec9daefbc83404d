"""Test-only Krita plug-in: drives the REAL "Restore Old Photo…" action in a GUI Krita (under Xvfb).

Enabled only in the test's private Krita profile. Reads the job from ``$OLDPHOTO_KRITA_E2E`` (JSON:
``input`` PNG, ``out`` folder, ``values`` for the dialog's widgets by object name), then, driven by
a timer on Krita's GUI thread:

1. opens the photo in a view, makes its layer active, saves its pixels;
2. triggers the action ``oldphoto_restore``; when the plug-in's dialog is up, sets the widgets and
   presses OK; waits for the "Restored" layer and for the progress dialog to go; with ``points`` in
   the job, paints its dots on a "Colour points" layer and runs it again "With colour points";
3. makes a group layer active and triggers the action again: records the message box's text;
4. writes ``report.json`` (+ raw pixel files) and exits Krita.

Every step has a deadline; a failure is written to the report, never left hanging (the test also
runs Krita under ``timeout``).
"""

import json
import os
import time
import traceback

from krita import Krita

try:
    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication, QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QPushButton, QSpinBox
except ImportError:  # Krita 6
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication, QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QPushButton, QSpinBox

JOB = os.environ.get("OLDPHOTO_KRITA_E2E")
STEP_TIMEOUT = 120.0


class Driver:
    def __init__(self, job):
        self.job = job
        self.out = job["out"]
        self.report = {"steps": []}
        self.state = "wait_window"
        self.t0 = time.monotonic()
        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        self.timer.start(100)

    def log(self, text):
        self.report["steps"].append(f"{time.monotonic() - self.t0:.1f}s {text}")

    def goto(self, state):
        self.log(state)
        self.state, self.since = state, time.monotonic()

    def tick(self):
        try:
            getattr(self, "step_" + self.state)()
            if self.state not in ("wait_window",) and time.monotonic() - self.since > STEP_TIMEOUT:
                raise RuntimeError(f"step {self.state} took longer than {STEP_TIMEOUT} s")
        except Exception:
            self.report["error"] = traceback.format_exc()
            modal = QApplication.activeModalWidget()
            self.report["modal"] = None if modal is None else [type(modal).__name__, modal.objectName(),
                                                               getattr(modal, "text", lambda: "")()]
            self.finish()

    # 1 ------------------------------------------------------------------------------------------
    def step_wait_window(self):
        app = Krita.instance()
        if app.activeWindow() is None or app.action("oldphoto_restore") is None:
            return
        self.doc = app.openDocument(self.job["input"])
        app.activeWindow().addView(self.doc)
        self.doc.waitForDone()
        self.photo = self.doc.rootNode().childNodes()[0]
        self.doc.setActiveNode(self.photo)
        self.report["photo"] = {"name": self.photo.name(), "type": self.photo.type(),
                                "space": [self.photo.colorModel(), self.photo.colorDepth(), self.photo.colorProfile()]}
        w, h = self.doc.width(), self.doc.height()
        self.size = (w, h)
        self.before = bytes(self.photo.pixelData(0, 0, w, h))
        self.goto("trigger")

    def step_trigger(self):
        if self.doc.activeNode() is None or self.doc.activeNode().name() != self.photo.name():
            self.doc.setActiveNode(self.photo)
            return
        self.goto("dialog")
        self.trigger()

    def plugin_runs(self):
        """The real plug-in's runs (its extension keeps each one alive while its job runs)."""
        for ext in Krita.instance().extensions():
            if type(ext).__name__ == "RestoreExtension":
                return ext.runs
        raise RuntimeError("the oldphoto_krita extension is not loaded")

    def trigger(self):
        """From its own timer event: the action runs modal dialogs (nested event loops), and Qt does not
        fire a timer again while its own handler is still running."""
        QTimer.singleShot(0, Krita.instance().action("oldphoto_restore").trigger)

    # 2 ------------------------------------------------------------------------------------------
    def step_dialog(self):
        dialog = QApplication.activeModalWidget()
        if dialog is None or dialog.objectName() != "oldphoto_restore_dialog":
            return
        for name, value in self.job["values"].items():
            w = dialog.findChild(QComboBox, name) or dialog.findChild(QCheckBox, name) or \
                dialog.findChild(QDoubleSpinBox, name) or dialog.findChild(QSpinBox, name) or \
                dialog.findChild(QLineEdit, name)
            if w is None:
                raise RuntimeError(f"the dialog has no control {name!r}")
            if isinstance(w, QComboBox):
                w.setCurrentIndex(w.findData(value))
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QLineEdit):
                w.setText(str(value))
            else:
                w.setValue(value)
        self.report["dialog_controls"] = sorted(c.objectName() for c in dialog.findChildren(
            (QComboBox, QCheckBox, QDoubleSpinBox, QSpinBox, QLineEdit)) if c.objectName())
        self.goto("wait_result")
        dialog.accept()

    def step_wait_result(self):
        modal = QApplication.activeModalWidget()
        if modal is not None and modal.objectName() == "oldphoto_error":
            raise RuntimeError(f"the plug-in reported an error: {modal.text()}")
        runs = self.plugin_runs()
        if not runs or not runs[-1].added:  # the run's finish() has returned (Krita calls inside it
            return                         # spin the event loop, so layers appear one by one)
        names = [n.name() for n in self.doc.rootNode().childNodes()]
        w, h = self.size
        nodes = {n.name(): n for n in self.doc.rootNode().childNodes()}
        self.report["layers"] = names
        self.report["restored_space"] = [nodes["Restored"].colorModel(), nodes["Restored"].colorDepth()]
        b = nodes["Restored"].bounds()
        self.report["restored_bounds"] = [b.x(), b.y(), b.width(), b.height()]
        with open(os.path.join(self.out, "restored.bgra"), "wb") as f:
            f.write(bytes(nodes["Restored"].pixelData(0, 0, w, h)))
        if "Scratch mask" in nodes:
            with open(os.path.join(self.out, "mask.bgra"), "wb") as f:
                f.write(bytes(nodes["Scratch mask"].pixelData(0, 0, w, h)))
        self.report["original_unchanged"] = bytes(self.photo.pixelData(0, 0, w, h)) == self.before
        self.doc.setActiveNode(self.photo)
        self.goto("points_setup" if "points" in self.job else "trigger_cancel")

    # 2a: "With colour points": dots painted on a "Colour points" layer ----------------------------
    def step_points_setup(self):
        self.dots = self.doc.createNode("Colour points", "paintlayer")
        self.doc.rootNode().addChildNode(self.dots, self.photo)
        self.dots.setColorSpace("RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc")
        for x, y, (r, g, b) in self.job["points"]["dots"]:
            self.dots.setPixelData(bytes((b, g, r, 255)) * 9, x, y, 3, 3)
        self.doc.refreshProjection()
        self.doc.setActiveNode(self.photo)
        self.known = {n.uniqueId() for n in self.doc.rootNode().childNodes()}
        self.goto("points_trigger")

    def step_points_trigger(self):
        if self.doc.activeNode() is None or self.doc.activeNode().name() != self.photo.name():
            self.doc.setActiveNode(self.photo)
            return
        self.goto("points_dialog")
        self.trigger()

    def step_points_dialog(self):
        dialog = QApplication.activeModalWidget()
        if dialog is None or dialog.objectName() != "oldphoto_restore_dialog":
            return
        for name, value in self.job["points"]["values"].items():
            w = dialog.findChild(QComboBox, name) or dialog.findChild(QCheckBox, name)
            if isinstance(w, QComboBox):
                w.setCurrentIndex(w.findData(value))
            else:
                w.setChecked(bool(value))
        self.goto("points_wait")
        dialog.accept()

    def step_points_wait(self):
        modal = QApplication.activeModalWidget()
        if modal is not None and modal.objectName() == "oldphoto_error":
            raise RuntimeError(f"the plug-in reported an error in points mode: {modal.text()}")
        runs = self.plugin_runs()
        if not runs or not runs[-1].added:
            return
        (new,) = [n for n in self.doc.rootNode().childNodes() if n.uniqueId() not in self.known]
        w, h = self.size
        self.report["points_layers"] = [n.name() for n in self.doc.rootNode().childNodes()]
        with open(os.path.join(self.out, "points.bgra"), "wb") as f:
            f.write(bytes(new.pixelData(0, 0, w, h)))
        new.remove()  # the document as it was before this step, for the cancel step
        self.dots.remove()
        self.doc.setActiveNode(self.photo)
        self.goto("trigger_cancel")

    # 2b: the same again, cancelled from the progress dialog -------------------------------------
    def step_trigger_cancel(self):
        if self.doc.activeNode() is None or self.doc.activeNode().name() != self.photo.name():
            self.doc.setActiveNode(self.photo)
            return
        self.goto("cancel_dialog")
        self.trigger()

    def step_cancel_dialog(self):
        dialog = QApplication.activeModalWidget()
        if dialog is None or dialog.objectName() != "oldphoto_restore_dialog":
            return
        colour = dialog.findChild(QComboBox, "colorize")  # the dialog remembers the last run's choice
        colour.setCurrentIndex(colour.findData("none"))
        self.goto("cancel_progress")
        dialog.accept()

    def step_cancel_progress(self):
        progress = QApplication.activeModalWidget()
        if progress is None or progress.objectName() != "oldphoto_progress":
            return
        self.run = self.plugin_runs()[-1]
        progress.findChild(QPushButton).click()  # the user presses Cancel
        self.goto("cancel_wait")

    def step_cancel_wait(self):
        if not self.run.job.done.is_set():
            return
        self.report["cancel"] = {"cancelled": self.run.job.cancelled.is_set(), "error": self.run.job.error,
                                 "added": [n.name() for n in self.run.added],
                                 "layers": [n.name() for n in self.doc.rootNode().childNodes()]}
        self.goto("cancel_settle")

    def step_cancel_settle(self):
        if time.monotonic() - self.since < 1.0:  # the plug-in's poll timer sees the job end
            return
        self.report["cancel"]["layers_after"] = [n.name() for n in self.doc.rootNode().childNodes()]
        modal = QApplication.activeModalWidget()
        self.report["cancel"]["modal"] = None if modal is None else modal.objectName()
        group = self.doc.createGroupLayer("A group")
        self.doc.rootNode().addChildNode(group, None)
        self.doc.setActiveNode(group)
        self.group = group
        self.goto("trigger_bad")

    # 3 ------------------------------------------------------------------------------------------
    def step_trigger_bad(self):
        active = self.doc.activeNode()
        if active is None or active.name() != "A group":
            self.doc.setActiveNode(self.group)
            return
        self.goto("wait_message")
        self.trigger()

    def step_wait_message(self):
        modal = QApplication.activeModalWidget()
        if modal is None:
            return
        self.report["bad_layer"] = {"object": modal.objectName(), "title": modal.windowTitle(),
                                    "text": modal.text() if hasattr(modal, "text") else None}
        self.goto("done")
        modal.done(0)

    # 4 ------------------------------------------------------------------------------------------
    def step_done(self):
        self.finish()

    def finish(self):
        self.timer.stop()
        self.report["elapsed"] = round(time.monotonic() - self.t0, 1)
        with open(os.path.join(self.out, "report.json"), "w", encoding="utf-8") as f:
            json.dump(self.report, f, indent=1)
        # Krita would ask whether to save the modified document; the report is written, so leave at once
        os._exit(0)


if JOB:
    with open(JOB, encoding="utf-8") as _f:
        _DRIVER = Driver(json.load(_f))
