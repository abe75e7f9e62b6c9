"""neuroview: interpretable-by-construction NeuroView CNNs and RNNs for PyTorch."""

from .core.activations import register_activation
from .core.cnn import NeuroViewCNN, Site
from .core.ensemble import Ensemble
from .core.explanation import CNNExplanation, Explanation, RNNExplanation
from .zoo import create_model, list_models, register_model
from .core.rnn import NeuroViewRNN, RNNClassifier
from .training.retrofit import RetrofitResult, retrofit
from .attribution.readability import readability, units_per_class
from .training.sparsify import SparsityPath, mean_codes, sparsify
from .training.sparse_finetune import finetune_sparse
from .training.ridge import fit_minirocket, fit_ridge_head, minirocket
from .core.wrap import wrap
from .attribution.gallery import UnitGallery, unit_gallery  # also registers net.unit_gallery
# DeletionCurves.plot draws with neuroview.viz, which the attribution layer may not import:
# importing it here registers the drawing wherever neuroview is used (matplotlib loads only to draw).
from .viz import faithfulness as _faithfulness_plots  # noqa: F401
from .viz import sparsity as _sparsity_plots  # noqa: F401  (SparsityPath.plot, the same way)

from ._version import __version__

__all__ = ["register_activation", "NeuroViewCNN", "Site", "Ensemble", "Explanation", "CNNExplanation", "RNNExplanation", "wrap", "create_model", "list_models", "register_model", "NeuroViewRNN", "RNNClassifier", "retrofit", "RetrofitResult", "unit_gallery", "UnitGallery", "sparsify", "finetune_sparse", "SparsityPath", "mean_codes", "units_per_class", "readability", "minirocket", "fit_minirocket", "fit_ridge_head"]
