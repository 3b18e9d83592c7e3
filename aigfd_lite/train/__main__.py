"""``python -m aigfd_lite.train`` (and ``torchrun ... -m aigfd_lite.train``): see :func:`aigfd_lite.train.loop.main`."""
from .loop import main

main()
