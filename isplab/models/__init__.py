"""The model zoo: learned ISPs behind one registry.

``create_model(name, **config)``, ``list_models()``, ``model_info(name)``. Every model maps
packed raw ``N x 4 x h x w`` (R, G1, G2, B, black-level subtracted, [0, 1]) to sRGB
``N x 3 x 2h x 2w`` in [0, 1] unless its registry entry says otherwise; sizes that are not
a multiple of the model's stride are padded (reflect) and cropped back inside the model.
Model cards: ``docs/models/<name>.md``.
"""

import importlib
import pkgutil

from isplab.models.registry import (
    ModelEntry,
    count_parameters,
    create_model,
    is_registered,
    list_models,
    model_entry,
    model_info,
    register_model,
)
from isplab.models.weights import (
    PACKAGE_WEIGHTS,
    installed_weights,
    load_model,
    load_weights,
    model_record,
    read_weights_meta,
    resolve,
    save_weights,
    weights_file,
)

# importing every module of the package registers the model families (the infrastructure
# modules, registry/common/weights/export, register nothing); helpers start with "_"
for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "ModelEntry", "count_parameters", "create_model", "list_models", "model_info",
    "register_model", "load_model", "load_weights", "read_weights_meta", "save_weights",
    "PACKAGE_WEIGHTS", "installed_weights", "is_registered", "model_entry", "model_record",
    "resolve", "weights_file",
]
