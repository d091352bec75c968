"""trRosetta adapter: network, input features, pretrained weights."""

from .features import alignment_features, dca_features, msa_profile, sequence_features, sequence_weights
from .model import TrRosetta, available_memory, bf16_supported, estimate_memory, resolve_precision
from .network import INSTANCE_NORMS, OUTPUTS, TrRosettaNetwork
from .weights import MODEL_NAMES, load_state_dict, parse_models, weights_folder

__all__ = [
    "INSTANCE_NORMS",
    "MODEL_NAMES",
    "OUTPUTS",
    "TrRosetta",
    "TrRosettaNetwork",
    "alignment_features",
    "available_memory",
    "bf16_supported",
    "resolve_precision",
    "dca_features",
    "estimate_memory",
    "load_state_dict",
    "msa_profile",
    "parse_models",
    "sequence_features",
    "sequence_weights",
    "weights_folder",
]
