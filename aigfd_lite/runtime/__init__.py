"""Where the package runs: progress bars, torchrun processes and mixed precision, the training data loader."""
from .data_loader import training_loader, worker_count
from .distributed import (Precision, barrier, broadcast_object, choose_precision, epoch_order, gather, gather_rows,
                          init_from_env, prepare, processes, shutdown)
from .progress import progress_bar

__all__ = ["Precision", "barrier", "broadcast_object", "choose_precision", "epoch_order", "gather", "gather_rows",
           "init_from_env", "prepare", "processes", "progress_bar", "shutdown", "training_loader", "worker_count"]
