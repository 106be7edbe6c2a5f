"""``python -m brevitas_models``: see :mod:`brevitas_models.cli`."""

import sys

from brevitas_models.cli import main

sys.exit(main())
