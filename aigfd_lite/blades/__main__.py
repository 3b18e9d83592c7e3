"""``python -m aigfd_lite.blades``: see :func:`aigfd_lite.blades.training.main`."""
from .training import main

main()
