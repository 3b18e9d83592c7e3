"""``python -m aigfd_lite.faces [--profile lite]``: build (or load) the face corpus; see :func:`aigfd_lite.faces.corpus.main`."""
from .corpus import main

raise SystemExit(main())
