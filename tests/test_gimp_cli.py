"""``oldphoto gimp install | uninstall | path`` and the installed plug-in's independence from the venv."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from oldphoto import bridge
from oldphoto.cli import gimp as gimp_cli
from oldphoto.cli import main


def test_default_folder_linux(tmp_path):
    home = tmp_path / "home"
    assert gimp_cli.default_plugins_dir("linux", {}, home) == home / ".config" / "GIMP" / "3.0" / "plug-ins"
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert gimp_cli.default_plugins_dir("linux", env, home) == tmp_path / "xdg" / "GIMP" / "3.0" / "plug-ins"


def test_default_folder_windows(tmp_path):
    env = {"APPDATA": str(tmp_path / "Roaming")}
    assert gimp_cli.default_plugins_dir("win32", env, tmp_path) == tmp_path / "Roaming" / "GIMP" / "3.0" / "plug-ins"


def test_default_folder_macos(tmp_path):
    want = tmp_path / "Library" / "Application Support" / "GIMP" / "3.0" / "plug-ins"
    assert gimp_cli.default_plugins_dir("darwin", {}, tmp_path) == want


def test_gimp3_directory_wins(tmp_path):
    env = {"GIMP3_DIRECTORY": str(tmp_path / "profile")}
    assert gimp_cli.default_plugins_dir("linux", env, tmp_path) == tmp_path / "profile" / "plug-ins"


def test_newest_existing_3x_profile(tmp_path):
    base = tmp_path / ".config" / "GIMP"
    for v in ("2.10", "3.0", "3.2", "3.10-backup"):
        (base / v).mkdir(parents=True)
    assert gimp_cli.default_plugins_dir("linux", {}, tmp_path) == base / "3.2" / "plug-ins"


def test_install_layout_and_config(tmp_path, capsys):
    plugins = tmp_path / "plug-ins"
    assert main(["gimp", "install", "--plugins-dir", str(plugins), "--device", "cpu"]) == 0
    folder = plugins / "restore_old_photo"
    main_file = folder / "restore_old_photo.py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["restore_old_photo.py", "oldphoto_bridge", "oldphoto_pixels.py", bridge.CONFIG_NAME]
    )
    assert os.access(main_file, os.X_OK), "GIMP ignores a plug-in that is not executable"
    assert main_file.read_text().startswith("#!/usr/bin/env python3\n")
    cfg = json.loads((folder / bridge.CONFIG_NAME).read_text())
    assert cfg["python"] == sys.executable and cfg["device"] == "cpu" and cfg["socket"] is None
    # the shared bridge client, unchanged, without the worker (numpy, torch)
    copied = folder / "oldphoto_bridge"
    assert sorted(p.name for p in copied.iterdir()) == sorted(bridge.CLIENT_MODULES)
    for name in bridge.CLIENT_MODULES:
        assert (copied / name).read_bytes() == (Path(bridge.__file__).parent / name).read_bytes()
    assert "Filters > Enhance > Restore Old Photo" in capsys.readouterr().out
    # reinstalling replaces the files (new mtime: GIMP queries the plug-in again)
    assert main(["gimp", "install", "--plugins-dir", str(plugins), "--weights-dir", str(tmp_path)]) == 0
    assert json.loads((folder / bridge.CONFIG_NAME).read_text())["weights_dir"] == str(tmp_path.resolve())


def test_install_replaces_the_single_file_bridge_of_earlier_versions(tmp_path):
    folder = tmp_path / "restore_old_photo"
    folder.mkdir()
    (folder / "oldphoto_bridge.py").write_text("PROTOCOL = 1\n")  # would shadow nothing, but confuses users
    gimp_cli.install(tmp_path, bridge.WorkerConfig(python=sys.executable))
    assert not (folder / "oldphoto_bridge.py").exists() and (folder / "oldphoto_bridge" / "__init__.py").is_file()
    cfg = json.loads((folder / bridge.CONFIG_NAME).read_text())
    assert cfg["install_command"] == "oldphoto gimp install"


def test_install_refuses_a_missing_python(tmp_path, capsys):
    assert main(["gimp", "install", "--plugins-dir", str(tmp_path), "--python", "/nonexistent/python"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "restore_old_photo").exists()


def test_uninstall_removes_only_ours(tmp_path, capsys):
    plugins = tmp_path / "plug-ins"
    (plugins / "someone_else").mkdir(parents=True)
    assert main(["gimp", "uninstall", "--plugins-dir", str(plugins)]) == 0
    assert "not installed" in capsys.readouterr().out
    assert main(["gimp", "install", "--plugins-dir", str(plugins)]) == 0
    assert main(["gimp", "uninstall", "--plugins-dir", str(plugins)]) == 0
    assert not (plugins / "restore_old_photo").exists()
    assert (plugins / "someone_else").is_dir()


def test_path_command(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("GIMP3_DIRECTORY", str(tmp_path))
    assert main(["gimp", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "plug-ins")


def test_installed_helpers_need_only_the_stdlib(tmp_path):
    """GIMP's Python has neither oldphoto nor numpy: import the installed helpers with site-packages
    off (-S -I) and check that no third-party module came along."""
    gimp_cli.install(tmp_path, bridge.WorkerConfig(python=sys.executable))
    folder = tmp_path / "restore_old_photo"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import oldphoto_bridge, oldphoto_pixels; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'torch', 'PIL', 'oldphoto')]; "
        "assert not bad, bad; assert oldphoto_bridge.OldPhotoError.__module__ == 'oldphoto_bridge.protocol'; "
        "cfg = oldphoto_bridge.WorkerConfig.load(sys.argv[1] + '/oldphoto-worker.json'); print(cfg.python)"
    )
    r = subprocess.run([sys.executable, "-S", "-I", "-c", code, str(folder)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == sys.executable


def test_plugin_file_imports_only_gimp_and_stdlib():
    src = resources.files("oldphoto_gimp").joinpath("restore_old_photo.py").read_text()
    tree = ast.parse(src)
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    allowed = set(sys.stdlib_module_names) | {"gi", "oldphoto_bridge", "oldphoto_pixels"}
    assert roots <= allowed, roots - allowed


def test_every_restore_option_is_a_procedure_argument():
    """The dialog fills bridge.RestoreOptions from the procedure arguments of the same names; an
    option added to the protocol without a GIMP control would fail here, not in a user's GIMP."""
    src = resources.files("oldphoto_gimp").joinpath("restore_old_photo.py").read_text()
    declared = set()
    for node in ast.walk(ast.parse(src)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr.startswith("add_") and node.func.attr.endswith("_argument")):
            declared.add(node.args[0].value)
    wanted = {name.replace("_", "-") for name in bridge.RestoreOptions.names()}
    assert wanted <= declared, wanted - declared
    assert {"reference-image", "reference-file"} <= declared


def test_restore_options_take_a_dialogs_values():
    opts = bridge.RestoreOptions.from_values({"scratches": "auto", "hr": 1, "mask_grow": 3.0, "strength": 1})
    assert opts == bridge.RestoreOptions(scratches="auto", hr=True, mask_grow=3, strength=1.0)
    assert isinstance(opts.mask_grow, int) and isinstance(opts.strength, float) and opts.hr is True
    with pytest.raises(TypeError, match="unknown restore options"):
        bridge.RestoreOptions.from_values({"sharpen": 1})
    with pytest.raises(ValueError, match="scratches must be one of none, auto, mask"):
        bridge.RestoreOptions.from_values({"scratches": "detect"})


@pytest.mark.parametrize("args", [["gimp"], ["gimp", "bogus"]])
def test_gimp_needs_an_action(args):
    with pytest.raises(SystemExit):
        main(args)
