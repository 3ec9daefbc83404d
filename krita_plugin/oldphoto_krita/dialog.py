"""The options dialog: the GIMP dialog's controls, each one a field of ``bridge.RestoreOptions``.

Why built from a table: :data:`CONTROLS` names every option the protocol carries, so a control added
to the protocol without a widget here fails a unit test instead of silently keeping its default.
"""

from __future__ import annotations

from typing import Any

from . import qt
from .client import bridge
from .controller import FROM_FILE

SCRATCHES = (("none", "None"), ("auto", "Detect automatically"), ("mask", "Use selection as damage mask"))
OUTPUTS = (("layer", "New layer"),
           ("repairs-only", "New layer showing only the repaired damage"),
           ("detect-only", "Detect scratches only (a 'Scratch mask' layer, no restoration)"))

COLORIZE = (("none", "No colour"), ("auto", "Automatic (DDColor)"), ("reference", "From a reference photo"),
            ("points", "With colour points"))
REFERENCE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp);;All files (*)"
COLOR_MODELS = (("modelscope", "ModelScope (default)"), ("paper", "Paper"), ("artistic", "Artistic (vivid)"),
                ("tiny", "Tiny (fast)"))
EXISTING_COLOR = (("replace", "Replace the existing colour"), ("grey-only", "Only if the layer is grey"))

CONTROLS: dict[str, tuple[str, str, Any]] = {
    # option -> (label, tooltip, spec): spec is ((value, text), ...) for a choice (a combo box),
    # (minimum, maximum, step) for a number (its type is the option's default's), None for a bool
    "scratches": ("Scratches:", "How to find scratches and tears", SCRATCHES),
    "faces": ("Enhance faces", "Detect faces and enhance them", None),
    "hr": ("HR (high resolution)", "High-resolution scratch model and 512 px faces (slower)", None),
    "strength": ("Strength:", "How much of the restoration is kept (0 = the original)", (0.0, 1.0, 0.05)),
    "face_strength": ("Face strength:", "How much of each enhanced face is blended in", (0.0, 1.0, 0.05)),
    "scratch_threshold": ("Scratch threshold:", "Detection probability from which a pixel is a scratch "
                          "(lower finds more)", (0.0, 1.0, 0.05)),
    "mask_grow": ("Mask grow (pixels):", "Widen the damage mask by this many pixels", (0, 64, 1)),
    "colorize": ("Colour:", "Colourise the restored photo (the last stage): automatically (DDColor), from a "
                 "reference photo (Deep Exemplar) or from dots painted on a 'Colour points' layer (SIGGRAPH17)",
                 COLORIZE),
    "colorize_model": ("Colour model:", "Which DDColor checkpoint colours the photo", COLOR_MODELS),
    "color_strength": ("Colour strength:", "How much of the predicted colour is kept (0 = grey)", (0.0, 1.0, 0.05)),
    "existing_color": ("If the layer has colour:", "Replace a layer's own colour, or colour only grey or "
                       "toned layers", EXISTING_COLOR),
}
HELP = ("Restores a damaged old photo with the networks of 'Bringing Old Photos Back to Life' (Wan et al., "
        "CVPR 2020) into a new layer 'Restored' above the active paint layer; the layer itself is not changed. "
        "With a selection, only its bounds are restored, unless it is the damage mask.\n"
        "Colour 'From a reference photo' carries over the colours of a colour photo of the same or a similar "
        "scene: choose a photo file, or another open document (its whole image is used). 'With colour points': "
        "add a transparent paint layer named 'Colour points' and paint a small dot of each known colour where "
        "it belongs; each separate dot becomes one point at its centre with its average colour.")


class RestoreDialog(qt.QDialog):
    """Modal dialog; :meth:`values` after it was accepted. Widgets carry object names (the option
    names) so that a test driving the real plug-in can find them."""

    def __init__(self, parent=None, *, settings: dict[str, Any] | None = None, python: str = "",
                 documents: list[str] | None = None) -> None:
        """``documents``: the titles of the other open documents, offered as reference photos (the
        value ``reference_document`` is an index into this list, or :data:`FROM_FILE`)."""
        super().__init__(parent)
        self.setObjectName("oldphoto_restore_dialog")
        self.setWindowTitle("Restore Old Photo")
        defaults = bridge.RestoreOptions().request()
        settings = settings or {}
        form = qt.QFormLayout()
        self.widgets: dict[str, Any] = {}
        for name, spec in CONTROLS.items():
            value = settings.get(name, defaults[name])
            label, tip, kind = spec
            if isinstance(defaults[name], str):
                widget = _combo(kind, value)
            elif isinstance(defaults[name], bool):
                widget = qt.QCheckBox(label)
                widget.setChecked(bool(value))
                label = ""
            else:
                lo, hi, step = kind
                widget = qt.QSpinBox() if isinstance(defaults[name], int) else qt.QDoubleSpinBox()
                if isinstance(widget, qt.QDoubleSpinBox):
                    widget.setDecimals(2)
                widget.setRange(lo, hi)
                widget.setSingleStep(step)
                try:
                    widget.setValue(type(defaults[name])(value))
                except (TypeError, ValueError):  # a remembered value of another version: the default
                    widget.setValue(defaults[name])
            widget.setObjectName(name)
            widget.setToolTip(tip)
            self.widgets[name] = widget
            form.addRow(label, widget)
        self.reference_document = _combo([(FROM_FILE, "The photo file below")]
                                          + list(enumerate(documents or [])), FROM_FILE)
        self.reference_document.setObjectName("reference_document")
        self.reference_document.setToolTip("For 'From a reference photo': another open document in colour (its "
                                           "whole image), or the photo file below")
        form.addRow("Reference:", self.reference_document)
        self.reference_file = qt.QLineEdit(str(settings.get("reference_file", "") or ""))
        self.reference_file.setObjectName("reference_file")
        self.reference_file.setToolTip("For 'From a reference photo': a colour photo of the same or a similar scene")
        browse = qt.QPushButton("Browse…")
        browse.setObjectName("reference_browse")
        browse.clicked.connect(self._browse)
        row = qt.QWidget()
        line = qt.QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.reference_file)
        line.addWidget(browse)
        self.reference_row = (self.reference_document, self.reference_file, browse)
        form.addRow("Reference photo file:", row)
        self.widgets["colorize"].currentIndexChanged.connect(self._colour_changed)
        self._colour_changed()
        self.output = _combo(OUTPUTS, settings.get("output", "layer"))
        self.output.setObjectName("output")
        form.addRow("Output:", self.output)
        self.mask_layer = qt.QCheckBox("Add the damage mask as a 'Scratch mask' layer")
        self.mask_layer.setObjectName("mask_layer")
        self.mask_layer.setChecked(bool(settings.get("mask_layer", False)))
        form.addRow("", self.mask_layer)
        self.python = qt.QLineEdit(python)
        self.python.setObjectName("python")
        self.python.setToolTip("The Python of the environment where oldphoto is installed (set by "
                               "`oldphoto krita install`)")
        form.addRow("Worker Python:", self.python)
        layout = qt.QVBoxLayout(self)
        about = qt.QLabel(HELP)
        about.setWordWrap(True)
        layout.addWidget(about)
        layout.addLayout(form)
        buttons = qt.QDialogButtonBox(qt.OK_CANCEL)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _colour_changed(self, *_args) -> None:
        """The reference controls are enabled only for 'From a reference photo', the DDColor model
        not for the guided modes (they use their own networks)."""
        colorize = self.widgets["colorize"].currentData()
        for widget in self.reference_row:
            widget.setEnabled(colorize == "reference")
        self.widgets["colorize_model"].setEnabled(colorize not in ("reference", "points"))

    def _browse(self) -> None:
        path, _filter = qt.QFileDialog.getOpenFileName(self, "Reference photo", self.reference_file.text(),
                                                       REFERENCE_FILTER)
        if path:
            self.reference_file.setText(path)
            self.reference_document.setCurrentIndex(0)  # a file just chosen is the reference

    def values(self) -> dict[str, Any]:
        """Every control's value: the options' fields, plus ``output``, ``mask_layer``, ``python``,
        ``reference_document`` and ``reference_file``."""
        out: dict[str, Any] = {}
        for name, widget in self.widgets.items():
            if isinstance(widget, qt.QComboBox):
                out[name] = widget.currentData()
            elif isinstance(widget, qt.QCheckBox):
                out[name] = widget.isChecked()
            else:
                out[name] = widget.value()
        out["output"] = self.output.currentData()
        out["mask_layer"] = self.mask_layer.isChecked()
        out["python"] = self.python.text().strip()
        out["reference_document"] = self.reference_document.currentData()
        out["reference_file"] = self.reference_file.text().strip()
        return out


def _combo(choices, current) -> Any:
    box = qt.QComboBox()
    for key, text in choices:
        box.addItem(text, key)
    keys = [k for k, _ in choices]
    box.setCurrentIndex(keys.index(current) if current in keys else 0)
    return box
