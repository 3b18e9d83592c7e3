"""Rehearse the full profile on every submission: every notebook with ``profile = "full"`` on a miniature dataset.

    python tools/rehearse.py [--only STEM ...] [--lanes 1|2]     # make rehearsal

Nobody runs ``profile = "full"`` here (no GPU, no paper data), so its branches would rot unseen. This script builds,
under ``_build/rehearsal/data``, a miniature of the official layout from the lite data
(:func:`aigfd_lite.data.miniature.lite_miniature`: FDF-like 128 px crops with Flickr-format EXIF strings, boxes and
keypoints; a CelebA-HQ-like folder with ``train.txt`` / ``test.txt``; the nine generator folders) and a synthetic
checkpoint in the authors' released key layout (``model.visual.*``, ``fc_iso`` ... ``fc_face``, CLIP leftovers), then
executes every notebook with papermill as a Colab user would, ``profile = "full"`` and ``data_root`` = the miniature,
plus tiny sizes through each notebook's ``settings`` parameter. Executed copies go to ``_build/rehearsal/executed/``,
results to ``_build/rehearsal/results/<stem>.json`` (``AIGFD_BUILD_DIR``), checkpoints to
``_build/rehearsal/checkpoints/full/``: the book's own build is untouched. Each whole rehearsal starts from scratch
(only the miniature is kept, rebuilt when its settings change), runs the notebooks in :data:`PHASES` of two lanes side
by side, one thread per kernel, and stops after the phase in which a notebook fails, naming it and the cell.

Offline stand-ins for what the full profile downloads: ``init`` = the synthetic checkpoint's path (so the key mapping
of :func:`aigfd_lite.models.initialisation.map_official_state_dict` runs), dlib landmarks instead of FAN, BLADES' learned text
tower instead of CLIP. The numbers are meaningless (a few steps on a few faces); what the rehearsal checks is that
every full-only branch runs to the end and saves its results.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REHEARSAL = ROOT / "_build" / "rehearsal"
DATA = REHEARSAL / "data"
#: Every Profile setting the rehearsal shrinks (and the offline stand-ins); passed as each notebook's ``settings``.
TINY = dict(device="cpu", landmark_backend="dlib", input_size=32, batch_size=4, epochs=1, num_workers=0,
            checkpoint_every_steps=1000, ranker_batch=8, n_gmm_fit=100,
            n_test_per_generator=4, test_size=32, tsne_points=24, gmm_components=2, gmm_reg_covar=1e-3,
            gmm_pca_components=32)  # 768-d full covariances on 100 faces: minutes of CPU for nothing
#: BLADES' settings that its profile table fixes (chapter 7's ``blades`` parameter).
TINY_BLADES = dict(text_tower="learned", batch_size=4, input_size=32, epochs=1, num_workers=0)
#: The miniature's size: training faces, and generated faces per generator folder.
N_FACES, N_GENERATED = 12, 4


def synthetic_released_checkpoint(path: Path, seed: int = 0) -> Path:
    """A random ResNet-50 ExifManipNet saved in the authors' released layout (the CLIP wrapper's ``model.visual.``
    prefix, heads ``fc_*`` as the published code names them, CLIP leftovers that map to nothing). Built once."""
    if path.is_file():
        return path
    import torch

    from aigfd_lite.models.network import ExifManipNet
    from aigfd_lite.models.initialisation import OFFICIAL_HEADS

    torch.manual_seed(seed)
    net = ExifManipNet()
    state = {f"model.visual.{k}": v for k, v in net.backbone.state_dict().items()}
    for theirs, ours in OFFICIAL_HEADS.items():
        state.update({f"{theirs}.{p}": v for p, v in net.heads[ours].state_dict().items()})
    state.update({"model.logit_scale": torch.ones(()), "model.positional_embedding": torch.zeros(4, 8)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"state_dict": state}, tmp)
    os.replace(tmp, path)
    return path


def build_data(root: Path = DATA) -> dict[str, Path]:
    """The miniature (reused when already built with the same settings) and the synthetic checkpoint."""
    from aigfd_lite import resolve
    from aigfd_lite.data.miniature import lite_miniature

    roots = lite_miniature(resolve("lite"), root / "paper", n_faces=N_FACES, n_generated=N_GENERATED)
    return {**roots, "root": root / "paper",
            "released": synthetic_released_checkpoint(root / "weights" / "released-layout.pth")}


def parameters(data: dict[str, Path]) -> dict:
    """The papermill parameters of every notebook (each receives the ones it declares)."""
    return {"profile": "full", "data_root": str(data["root"]),
            "settings": {**TINY, "init": str(data["released"])}, "blades": TINY_BLADES,
            # chapter 1: photos per pair-label minibatch; 2: ranker steps; 9: DCGAN faces scored; 11: files decoded
            "batch_size": 8, "steps": 4, "n_generated": 2, "check_sample": 20}


#: The whole rehearsal in phases of two lanes run side by side (one core each): a lane's notebooks run in order, a
#: phase starts when the previous one has finished. Chapters 5-9 load chapter 4's run; chapter 0 quotes chapter 6;
#: chapter 10 reads chapters 1, 2, 3 and 6.
PHASES = ((("04_pretraining",), ("01_exif_labels", "02_fidelity_loss", "03_manipulations", "11_paper_data")),
          (("05_detector", "06_results", "00_introduction"), ("07_blades", "08_robustness", "09_score_your_images")),
          (("10_reproducibility",),))


def run_lanes(lanes, kernel: str) -> None:
    """Each lane in its own process (this script with ``--only``), side by side; any failure stops the rehearsal."""
    import subprocess

    procs = [subprocess.Popen([sys.executable, __file__, "--only", *lane, "--kernel", kernel, "--data-ready"])
             for lane in lanes]
    codes = [proc.wait() for proc in procs]
    failed = [lane for lane, code in zip(lanes, codes) if code]
    if failed:
        raise SystemExit(f"[rehearsal] FAILED in {failed}: see the messages above")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=[], help="notebook stems, run in this order (default: all)")
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--lanes", type=int, choices=(1, 2), default=2,
                        help="notebooks side by side: 2 (one core each, the default), or 1 (one at a time, e.g. "
                             "beside other work)")
    parser.add_argument("--data-ready", action="store_true", help=argparse.SUPPRESS)  # a lane of run_lanes
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tools"))
    import book

    start = time.perf_counter()
    os.environ["AIGFD_BUILD_DIR"] = str(REHEARSAL)
    # Tiny tensors gain nothing from threads, and spinning OpenMP threads on a busy 2-core machine cost 10x.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    data = build_data()
    if not args.data_ready:
        print(f"[rehearsal] miniature and synthetic checkpoint ready in {time.perf_counter() - start:.1f} s",
              flush=True)
    if not args.only:
        every = {s for s in book.toc_stems() if book.paired(s)}
        planned = {s for phase in PHASES for lane in phase for s in lane}
        if planned != every:
            raise SystemExit(f"[rehearsal] PHASES must list every notebook once: {sorted(every ^ planned)}")
        for old in REHEARSAL.iterdir():  # a rehearsal starts from scratch (its data aside): chapter 4 trains again
            if old != DATA:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        for phase in PHASES:
            run_lanes(phase if args.lanes == 2 else [tuple(s for lane in phase for s in lane)], args.kernel)
        print(f"[rehearsal] every notebook ran with profile = 'full' in {time.perf_counter() - start:.1f} s")
        return
    for stem in args.only:  # in the order given (book.execute would follow the table of contents)
        declared = book.declared_parameters(ROOT / "notebooks" / f"{stem}.ipynb")
        params = {k: v for k, v in parameters(data).items() if k in declared}
        book.execute([stem], params, args.kernel, build=REHEARSAL)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
