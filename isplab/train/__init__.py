"""Training: YAML recipes (:mod:`isplab.train.recipe`), the trainer, checkpoints."""

from isplab.train.recipe import DEFAULTS, apply_overrides, load_recipe, stages_of
from isplab.train.trainer import Trainer, TrainingError, train

__all__ = ["DEFAULTS", "apply_overrides", "load_recipe", "stages_of", "Trainer",
           "TrainingError", "train"]
