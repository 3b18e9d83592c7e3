"""Write imgaug's own PiecewiseAffine outputs for fixed seeds to a reference file (run in the imgaug side env).

    .venv-imgaug/bin/python tools/imgaug_reference.py _build/imgaug/reference.npz

imgaug 0.4 does not import beside numpy 2, so the main environment cannot run it; ``make imgaug-env`` builds a
small side environment (numpy < 2 + imgaug, hash-pinned in requirements-imgaug.txt) and ``make imgaug-reference``
runs this script there. It needs only numpy and imgaug (not aigfd_lite). For each seed it makes a deterministic
test image, lets imgaug *draw* the warp (``PiecewiseAffine(scale=(0.04, 0.05), nb_rows=4, nb_cols=4, order=1,
cval=0, mode="constant")``, the paper's setting, seeded) and warp the image, and stores the input, imgaug's jitter
and imgaug's output. tests/manipulate/test_manipulate.py feeds the same jitter to the package's warp backends and requires
agreement within one grey level.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SEEDS = tuple(range(8))
SHAPES = ((128, 128), (96, 160))  # square like the crops, and a wide one (catches an x/y mix-up)


def test_image(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """Smooth colour gradients, a checkerboard and a little noise: every pixel's neighbourhood differs."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    checker = ((yy // 8 + xx // 8) % 2) * 60
    noise = np.random.RandomState(seed).randint(0, 30, size=(h, w, 3))
    image = np.stack([xx / w * 150 + checker, yy / h * 150 + checker, (xx + yy) / (h + w) * 200], axis=2)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def main(argv: list[str]) -> int:
    import imgaug
    import imgaug.augmenters as iaa

    out = Path(argv[0] if argv else "_build/imgaug/reference.npz")
    arrays: dict[str, np.ndarray] = {}
    for seed in SEEDS:
        shape = SHAPES[seed % len(SHAPES)]
        image = test_image(seed, shape)
        aug = iaa.PiecewiseAffine(scale=(0.04, 0.05), nb_rows=4, nb_cols=4, order=1, cval=0, mode="constant")
        samples = aug._draw_samples(1, imgaug.random.RNG(seed))
        warped = aug._augment_images_by_samples([image.copy()], samples)[0]
        arrays[f"image_{seed}"] = image
        arrays[f"jitter_{seed}"] = np.asarray(samples.jitter[0], dtype=np.float64)
        arrays[f"imgaug_{seed}"] = warped
    arrays["versions"] = np.array(f"imgaug {imgaug.__version__}, numpy {np.__version__}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(out)
    print(f"{len(SEEDS)} imgaug warps written to {out} ({arrays['versions']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
