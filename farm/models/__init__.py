"""Model recipes -> .tflite variants + test split + host reference, cached by content hash.

The variants (farm.models.variants.VARIANTS): float32, int8-weights, dynamic, int8.

    from farm.models import VARIANTS, build_variant, list_models
    art = build_variant("sine", "int8", Path(".farm/models"))
    art.tflite_path, art.test_inputs, art.ref_outputs, art.host_metric

Recipes register themselves by decorator (`farm.models.registry.recipe`); each
recipe module is imported below. Nothing here imports TensorFlow.
"""

from farm.models import ad as _ad  # noqa: F401  (each module registers its recipe)
from farm.models import digits as _digits  # noqa: F401
from farm.models import ic as _ic  # noqa: F401
from farm.models import kws as _kws  # noqa: F401
from farm.models import sine as _sine  # noqa: F401
from farm.models import vww as _vww  # noqa: F401
from farm.models.artifacts import ModelArtifacts
from farm.models.registry import UnknownModelError, get_recipe, list_models, registered_models
from farm.models.variants import VARIANTS, build_variant

__all__ = ["VARIANTS", "ModelArtifacts", "UnknownModelError", "build_variant", "get_recipe", "list_models",
           "registered_models"]
