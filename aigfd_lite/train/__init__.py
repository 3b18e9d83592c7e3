"""Pretraining (chapter 4): the step, the resumable loop (shared with BLADES), accumulation, run folders and
checkpoints, GPU budgets."""
from .accumulation import resolve_accumulation, with_resolved_accumulation
from .checkpoints import load_checkpoint
from .ddp_check import measure_equivalence
from .measurements import NO_MEASUREMENT, gpu_measurements, training_rows
from .gpu_memory import estimate_training_memory, memory_table
from .loop import (bootstrap_intervals, compute_losses, evaluate_pretext, fetch_or_train, load_trained, train,
                   train_step)
from .resumable import Job, run_resumable, stored_run
from .run_lock import hold_run_lock
from .run_settings import BLADES_RULES, check_device_available
from .run_config import RunConfig, TrainConfig, parse_set_options
from .runs import EpochSampler, checkpoint_dir, config_difference, with_data_identity

__all__ = ["BLADES_RULES", "EpochSampler", "Job", "NO_MEASUREMENT", "RunConfig", "TrainConfig",
           "bootstrap_intervals", "check_device_available", "checkpoint_dir", "compute_losses",
           "config_difference", "estimate_training_memory", "evaluate_pretext", "fetch_or_train",
           "gpu_measurements", "hold_run_lock", "load_checkpoint", "load_trained", "measure_equivalence",
           "memory_table", "parse_set_options", "resolve_accumulation", "run_resumable", "stored_run", "train",
           "train_step", "training_rows", "with_data_identity", "with_resolved_accumulation"]
