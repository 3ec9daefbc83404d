"""The GIMP 3 plug-in files, shipped inside the oldphoto distribution as package data.

Nothing here is imported by GIMP: ``oldphoto gimp install`` (:mod:`oldphoto.cli.gimp`) copies
``restore_old_photo.py`` and ``pixels.py`` out of this package (found through importlib.resources,
so it works from a wheel as well as from a checkout) into GIMP's plug-ins folder.
"""

PLUGIN_FILE = "restore_old_photo.py"
PIXELS_FILE = "pixels.py"
