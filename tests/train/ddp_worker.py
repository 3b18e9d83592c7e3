"""One rank of the torchrun runs of tests/train/test_distributed.py (not collected by pytest: no test_ prefix).

``python -m torch.distributed.run --nproc_per_node 2 tests/train/ddp_worker.py OUT first|resume``. Writes its findings
to OUT (``grads_*.pt``, ``features.npz``, ``fetch_<rank>.json``, ``audit_<phase>_<rank>.json``); every write of
the trainer goes to ``OUT/runs``, which an audit hook watches per rank. Phase ``first`` ends by SIGKILLing itself
at step 7 of run ``b``; phase ``resume`` finishes run ``b``.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: conftest's ROOT, read by test_train
from test_train import dataset, model, tiny_config  # the tiny synthetic set and network of the training tests

from aigfd_lite.runtime import distributed
from aigfd_lite.models.network import prepare_batch
from aigfd_lite.train.loop import fetch_or_train, global_batch_loss, train

OUT, PHASE = Path(sys.argv[1]), sys.argv[2]
RUNS = str(OUT / "runs")
WRITES: list[list[str]] = []


def audit(event: str, args: tuple) -> None:
    """Record every file creation, rename, removal or directory creation under OUT/runs."""
    paths = [str(a) for a in args if isinstance(a, (str, os.PathLike))]
    if event == "open":
        if not (isinstance(args[1], str) and set(args[1]) & set("wax+")):
            return
        paths = paths[:1]
    elif event not in ("os.rename", "os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "os.symlink"):
        return
    if any(p.startswith(RUNS) for p in paths):
        WRITES.append([event, *paths])


def equivalence_config(batchnorm: str):
    return tiny_config(batch_size=8, lr=5e-4, max_steps=1, batchnorm=batchnorm)


def first_batch_gradients(batchnorm: str) -> dict[str, torch.Tensor]:
    """The gradient of Eq. 6 on the first global batch, after DDP's averaging, with the trainer's own pieces."""
    procs = distributed.processes()
    tcfg = equivalence_config(batchnorm)
    data = dataset()
    data.set_epoch(0)
    indices = next(iter(distributed.ShardedBatchSampler(len(data), tcfg.batch_size, tcfg.seed, 0, 0, procs.rank,
                                                        procs.world_size)))
    images, tags, labels, _ = torch.utils.data.default_collate([data[i] for i in indices])
    images = prepare_batch(images, torch.device("cpu"), tcfg.input_size, False)  # as the training step does
    module, net = distributed.prepare(model(), batchnorm, procs, torch.device("cpu"))
    loss, _ = global_batch_loss(net, images, tags, labels, tcfg)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in module.named_parameters()}
    return {"loss": loss.detach(), **grads}


def main() -> None:
    os.environ["AIGFD_BUILD_DIR"] = str(OUT / "runs" / "build")
    procs, _ = distributed.init_from_env("cpu")
    sys.addaudithook(audit)
    rank = procs.rank
    if PHASE == "first":
        for batchnorm in ("sync", "local"):
            train(equivalence_config(batchnorm), OUT / "runs" / f"eq_{batchnorm}", dataset=dataset(),
                  model=model(), progress=False)
            grads = first_batch_gradients(batchnorm)
            if rank == 0:
                torch.save(grads, OUT / f"grads_{batchnorm}.pt")
        rng = np.random.default_rng(3)
        images = rng.integers(0, 256, (11, 16, 16, 3), dtype=np.uint8)  # 11: the two slices differ in size
        from aigfd_lite.models.features import extract_features

        net = model()
        from_array = extract_features(net, images, input_size=16, batch_size=4, progress=False)
        from_dataset = extract_features(net, dataset(n=7), input_size=16, batch_size=4, progress=False)
        if rank == 0:
            np.savez(OUT / "features.npz", array=from_array, dataset=from_dataset)
        else:
            assert from_array.shape == (0, 16) and from_dataset.shape == (0, 16), (from_array.shape,)
        # fetch_or_train: rank 0 moves the stale run aside behind a barrier; every rank then sees the same folder
        import aigfd_lite.train.loop as train_module
        from aigfd_lite import resolve

        def fake_train(tcfg, run_dir, progress=True, profile=None):
            seen = {"rank": rank, "run_dir_exists": Path(run_dir).exists(),
                    "stale": len(list(Path(run_dir).parent.glob("ours.stale-*")))}
            (OUT / f"fetch_{rank}.json").write_text(json.dumps(seen))
            return None, None

        train_module.train = fake_train
        fetch_or_train(resolve("lite"), "ours", feature_dim=16, epochs=1)
        train_module.train = train
        (OUT / f"audit_first_{rank}.json").write_text(json.dumps(WRITES))
        train(tiny_config(), OUT / "runs" / "a", dataset=dataset(), model=model(), progress=False)
        train(tiny_config(stop_after_steps=7), OUT / "runs" / "b", dataset=dataset(), model=model(), progress=False)
        raise AssertionError("stop_after_steps=7 should have killed this process")
    train(tiny_config(), OUT / "runs" / "b", dataset=dataset(), model=model(), progress=False)
    (OUT / f"audit_resume_{rank}.json").write_text(json.dumps(WRITES))
    distributed.shutdown()


if __name__ == "__main__":
    main()
