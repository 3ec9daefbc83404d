"""The Qt modules of whichever PyQt the running Krita uses: PyQt5 (Krita 5) or PyQt6 (Krita 6).

Why a shim: a plug-in that imports PyQt5 does not load in Krita 6. The binding Krita itself
imported wins (both may be installed system-wide); the names below cover the few places where the
two differ (scoped enums, ``exec`` vs ``exec_``).
"""

from __future__ import annotations

import importlib
import sys


def _binding() -> str:
    for name in ("PyQt6", "PyQt5"):
        if f"{name}.QtCore" in sys.modules:
            return name
    for name in ("PyQt5", "PyQt6"):
        try:
            importlib.import_module(f"{name}.QtCore")
        except ImportError:
            continue
        return name
    raise ImportError("neither PyQt5 nor PyQt6 can be imported")


BINDING = _binding()
QtCore = importlib.import_module(f"{BINDING}.QtCore")
QtWidgets = importlib.import_module(f"{BINDING}.QtWidgets")

Qt = QtCore.Qt
QTimer = QtCore.QTimer
QDialog = QtWidgets.QDialog
QDialogButtonBox = QtWidgets.QDialogButtonBox
QFormLayout = QtWidgets.QFormLayout
QVBoxLayout = QtWidgets.QVBoxLayout
QHBoxLayout = QtWidgets.QHBoxLayout
QWidget = QtWidgets.QWidget
QPushButton = QtWidgets.QPushButton
QFileDialog = QtWidgets.QFileDialog
QComboBox = QtWidgets.QComboBox
QCheckBox = QtWidgets.QCheckBox
QDoubleSpinBox = QtWidgets.QDoubleSpinBox
QSpinBox = QtWidgets.QSpinBox
QLabel = QtWidgets.QLabel
QLineEdit = QtWidgets.QLineEdit
QMessageBox = QtWidgets.QMessageBox
QProgressDialog = QtWidgets.QProgressDialog
QApplication = QtWidgets.QApplication

if BINDING == "PyQt6":
    WINDOW_MODAL = Qt.WindowModality.WindowModal
    OK_CANCEL = QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
else:
    WINDOW_MODAL = Qt.WindowModal
    OK_CANCEL = QDialogButtonBox.Ok | QDialogButtonBox.Cancel


def exec_dialog(dialog) -> int:
    """``exec()`` (PyQt6) or ``exec_()`` (PyQt5)."""
    run = getattr(dialog, "exec", None) or dialog.exec_
    return run()
