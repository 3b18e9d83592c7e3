"""BLADES (chapter 7): eleven pretext tasks, their data, the joint embedding, bi-level task weights, two detectors."""
from .bilevel import exact_hypergradient, finite_difference_hypergradient
from .categorical_camera import SIMULATED_CATEGORICAL_NOTE
from .data import build_blades_dataset
from .detect import blades_oc, pseudo_outliers, train_blades_bc
from .tasks import CATEGORICAL_TASKS, LEVELS, LOSS_NAMES, TASKS, prompts, task
from .training import BladesConfig, build_blades_model, build_image_tower, fetch_or_train_blades

__all__ = ["BladesConfig", "CATEGORICAL_TASKS", "LEVELS", "LOSS_NAMES", "SIMULATED_CATEGORICAL_NOTE", "TASKS",
           "blades_oc", "build_blades_dataset", "build_blades_model", "build_image_tower", "exact_hypergradient",
           "fetch_or_train_blades", "finite_difference_hypergradient", "prompts", "pseudo_outliers", "task",
           "train_blades_bc"]
