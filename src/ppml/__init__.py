"""ppml: privacy-preserving machine learning on the Paillier cryptosystem.

The workflow, as a customer and a server use it::

    import ppml

    # server
    trained = ppml.train("laptops.csv", "Price")
    trained.spec.save("features.json")            # public
    trained.model.save("model.json")              # private (0600)

    # customer
    public_key, private_key = ppml.generate_keypair()
    spec = ppml.FeatureSpec.load("features.json")
    ppml.encrypt_file(private_key, spec, "mine.csv", "query.jsonl")

    # server
    ppml.predict_file(spec, model, "query.jsonl", "result.jsonl")

    # customer
    ppml.decrypt_file(private_key, "result.jsonl", "prices.csv", query="query.jsonl", spec=spec)

The package is layered; each layer imports only the ones above it in this list:

- :mod:`ppml.errors` -- the one exception hierarchy;
- :mod:`ppml.crypto` -- the Paillier cryptosystem on integers, key proofs and the
  key policy; :mod:`ppml.crypto.hazmat` holds the unchecked operations the roles
  build on, and nothing else should need them;
- :mod:`ppml.encoding` -- fixed-point encoding, packing and the result mask;
- :mod:`ppml.wire` -- versioned file and wire formats (keys, queries, results, JWK);
- :mod:`ppml.features` -- from raw CSV rows to model inputs, and the public feature spec;
- :mod:`ppml.model` -- the server's linear model and its training;
- :mod:`ppml.roles` -- the customer (encrypt, decrypt) and the server (predict);
- :mod:`ppml.service` -- the HTTP service and its client;
- :mod:`ppml.cli` -- the ``ppml`` command, a thin layer over the above.

The names below load their modules on first use, so ``import ppml`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Ciphertext": "ppml.crypto",
    "PrivateKey": "ppml.crypto",
    "PublicKey": "ppml.crypto",
    "generate_keypair": "ppml.crypto",
    "EncryptedNumber": "ppml.encoding",
    "FixedPoint": "ppml.encoding",
    "FeatureSpec": "ppml.features",
    "Output": "ppml.features",
    "LinearModel": "ppml.model",
    "train": "ppml.model.training",
    "encrypt_file": "ppml.roles.customer",
    "decrypt_file": "ppml.roles.customer",
    "predict_file": "ppml.roles.server",
    "query_service": "ppml.service.client",
    "load_public_key": "ppml.wire",
    "load_private_key": "ppml.wire",
    "save_keypair": "ppml.wire",
    "PpmlError": "ppml.errors",
}

__all__ = [
    "Ciphertext",
    "EncryptedNumber",
    "FeatureSpec",
    "FixedPoint",
    "LinearModel",
    "Output",
    "PpmlError",
    "PrivateKey",
    "PublicKey",
    "__version__",
    "decrypt_file",
    "encrypt_file",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
    "predict_file",
    "query_service",
    "save_keypair",
    "train",
]

if TYPE_CHECKING:
    from ppml.crypto import Ciphertext, PrivateKey, PublicKey, generate_keypair
    from ppml.encoding import EncryptedNumber, FixedPoint
    from ppml.errors import PpmlError
    from ppml.features import FeatureSpec, Output
    from ppml.model import LinearModel
    from ppml.model.training import train
    from ppml.roles.customer import decrypt_file, encrypt_file
    from ppml.roles.server import predict_file
    from ppml.service.client import query_service
    from ppml.wire import load_private_key, load_public_key, save_keypair


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ppml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
