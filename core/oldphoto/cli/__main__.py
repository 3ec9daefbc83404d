"""``python -m oldphoto.cli ...``: the same as the ``oldphoto`` command."""

import sys

from . import main

sys.exit(main())
