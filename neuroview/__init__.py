"""neuroview: interpretable-by-construction NeuroView CNNs and RNNs for PyTorch."""

from .cnn import NeuroViewCNN, Site
from .explanation import CNNExplanation, Explanation, RNNExplanation
from .models import create_model, list_models, register_model
from .rnn import NeuroViewRNN, RNNClassifier
from .retrofitting import RetrofitResult, retrofit
from .wrap import wrap

__version__ = "0.1.0"

__all__ = ["NeuroViewCNN", "Site", "Explanation", "CNNExplanation", "RNNExplanation", "wrap", "create_model", "list_models", "register_model", "NeuroViewRNN", "RNNClassifier", "retrofit", "RetrofitResult"]
