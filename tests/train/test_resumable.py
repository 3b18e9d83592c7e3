"""Tests of aigfd_lite.train.resumable, the loop pretraining and BLADES share, with a toy job: checkpoint cadence, a
run stopped early and resumed equals one run straight through, settings compared, the fetch of a stored run.
(The SIGKILL hook is tested through both jobs: test_train.py and test_blades.py.)"""
from __future__ import annotations

import pytest
import torch

from aigfd_lite.train import Job, TrainConfig, load_checkpoint, run_resumable, stored_run
from aigfd_lite.train.resumable import checkpoint_due

STEPS_PER_EPOCH, EPOCHS = 3, 4


def toy_job(seed: int = 0) -> tuple[Job, torch.nn.Linear]:
    """A linear model fitted by SGD to random targets drawn from the global RNG (so a resume must restore it)."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    parts = {"model": model, "optimizer": optimizer}

    def load_states(ckpt):
        for name, part in parts.items():
            part.load_state_dict(ckpt[name])

    def batches(start, stop):
        for _ in range(start, stop):
            yield torch.ones(4, 2)

    def step(x):
        loss = ((model(x) - torch.randn(4, 1)) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach())}

    job = Job(name="toy", steps_per_epoch=STEPS_PER_EPOCH, total_steps=STEPS_PER_EPOCH * EPOCHS,
              state_names=tuple(parts), states=lambda: {n: p.state_dict() for n, p in parts.items()},
              load_states=load_states, batches=batches, step=step,
              row=lambda s, values, seconds, elapsed: {"step": s, **values, "elapsed_seconds": elapsed})
    return job, model


@pytest.fixture(autouse=True)
def run_folders(tmp_path):
    for name in ("a", "b", "run"):  # the trainers make them, holding their lock (train/run_lock.py)
        (tmp_path / name).mkdir()


def config(**kw) -> TrainConfig:
    return TrainConfig(**{"profile": "toy", "checkpoint_every_steps": 5, "checkpoint_every_epochs": 2, **kw})


def test_checkpoints_every_n_steps_every_k_epochs_and_at_the_stop():
    cfg = config()
    due = [s for s in range(1, 13) if checkpoint_due(s, STEPS_PER_EPOCH, cfg, stop_at=12)]
    assert due == [5, 6, 10, 12]  # steps 5 and 10; epochs 2 and 4 end at steps 6 and 12
    assert [s for s in range(1, 8) if checkpoint_due(s, STEPS_PER_EPOCH, cfg, stop_at=7)] == [5, 6, 7]


def test_a_run_stopped_and_resumed_equals_one_run_straight_through(tmp_path):
    job, model = toy_job()
    rows = run_resumable(job, config(), tmp_path / "a", progress=False)
    assert [r["step"] for r in rows] == list(range(1, 13)) and (tmp_path / "a" / "final.pt").is_file()
    straight = {k: v.clone() for k, v in model.state_dict().items()}

    job, _ = toy_job()
    run_resumable(job, config(), tmp_path / "b", stop_at=7, progress=False)
    assert load_checkpoint(tmp_path / "b" / "last.pt", ("step",))["step"] == 7
    assert not (tmp_path / "b" / "final.pt").exists()
    job, model = toy_job(seed=1)  # other initial weights and RNG: the checkpoint must restore both
    rows_b = run_resumable(job, config(), tmp_path / "b", progress=False)
    assert [r["step"] for r in rows_b] == list(range(1, 13))
    assert [r["loss"] for r in rows_b] == [r["loss"] for r in rows]
    for key, value in model.state_dict().items():
        assert torch.equal(value, straight[key]), key
    final = load_checkpoint(tmp_path / "b" / "final.pt")
    assert all(torch.equal(final["model"][k], straight[k]) for k in straight)


def test_a_run_with_other_settings_is_refused_and_fetch_moves_it_aside(tmp_path):
    job, _ = toy_job()
    run_resumable(job, config(), tmp_path / "run", stop_at=5, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        run_resumable(toy_job()[0], config(lr=0.5), tmp_path / "run", progress=False)
    assert stored_run(tmp_path / "run", config()) is None  # same settings, not finished: nothing to fetch
    run_resumable(toy_job()[0], config(), tmp_path / "run", progress=False)
    ckpt, log = stored_run(tmp_path / "run", config())
    assert ckpt["step"] == 12 and list(log["step"]) == list(range(1, 13))
    assert stored_run(tmp_path / "run", config(lr=0.5)) is None  # other settings: moved aside, never deleted
    assert sorted(p.name[:10] for p in tmp_path.iterdir()) == ["a", "b", "run.stale-"]
