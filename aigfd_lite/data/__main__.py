"""``python -m aigfd_lite.data check DATA_ROOT``: see :mod:`aigfd_lite.data`."""
import sys

from .check import main

sys.exit(main())
