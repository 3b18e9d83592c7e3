"""Tests of aigfd_lite.blades.data (chapter 7): the full profile's items from the official FDF layout, with the
categorical tags read from the Flickr JSON (the miniature layout of tests/fdf/test_fdf.py)."""
from __future__ import annotations

import json

import numpy as np

from aigfd_lite.fdf import layout as fdf
from aigfd_lite.blades.data import FDFBladesDataset
from aigfd_lite.blades.tasks import task
from aigfd_lite.fdf.layout import FDFLayout
from test_fdf import build_layout


def test_fdf_items_carry_real_categorical_exif(tmp_path):
    ssl = build_layout(tmp_path)
    record = json.loads((ssl / fdf.EXIF_DIR / "9000000001.json").read_text())
    record["EXIF"].update({"Make": "NIKON CORPORATION", "White Balance": "Manual",
                           "Metering Mode": "Pattern", "Exposure Program": "Aperture-priority AE"})
    (ssl / fdf.EXIF_DIR / "9000000001.json").write_text(json.dumps(record))
    layout = FDFLayout(tmp_path, seed=1)
    data = FDFBladesDataset(layout, input_size=32)
    assert len(data) == len(layout.faces) == 3
    first = [f.name for f in layout.faces].index("100000")
    expected = [task("make").classes.index("nikon"), task("metering_mode").classes.index("multi-segment"),
                -1, 1, task("exposure_program").classes.index("aperture priority")]
    assert data.categorical[first].tolist() == expected
    assert (data.categorical[[i for i in range(3) if i != first]] == -1).all()  # no categorical tags: no loss
    image, levels, categorical, manipulated, parts = data[first]
    assert image.shape == (3, 32, 32) and levels.shape == (4,) and categorical.tolist() == expected
    assert int(manipulated) in (0, 1) and parts.shape == (2,)
    assert set(np.unique(data.levels)) <= {-1, 0, 1, 2}
    seen = set()
    for epoch in range(12):  # a flipped part only ever on a manipulated item; real items have none
        data.set_epoch(epoch)
        _, _, _, manipulated, parts = data[first]
        assert int(manipulated) == 1 or parts.sum() == 0
        seen.add((int(manipulated), tuple(parts.tolist())))
    assert (0, (0.0, 0.0)) in seen and any(m == 1 for m, _ in seen)
