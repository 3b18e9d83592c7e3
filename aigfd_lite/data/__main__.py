"""``python -m aigfd_lite.data check DATA_ROOT``: see :mod:`aigfd_lite.data`."""
import sys

from . import main

sys.exit(main())
