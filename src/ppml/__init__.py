"""ppml: privacy-preserving machine learning on the Paillier cryptosystem.

The package is layered; each layer imports only the ones above it in this list:

- :mod:`ppml.errors` -- the one exception hierarchy;
- :mod:`ppml.crypto` -- the Paillier cryptosystem on integers;
- :mod:`ppml.encoding` -- fixed-point encoding of real numbers, with checked arithmetic;
- :mod:`ppml.wire` -- versioned file and wire formats (keys, queries, results, JWK);
- :mod:`ppml.features` -- from raw CSV rows to model inputs, and the public feature spec;
- :mod:`ppml.model` -- the server's linear model and its training;
- :mod:`ppml.roles` -- the customer (encrypt, decrypt) and the server (predict);
- :mod:`ppml.service` -- the HTTP service and its client;
- :mod:`ppml.cli` -- the ``ppml`` command, a thin layer over the above.
"""

from ppml.crypto import Ciphertext, PrivateKey, PublicKey, generate_keypair
from ppml.encoding import EncryptedNumber, FixedPoint

__version__ = "0.1.0"

__all__ = [
    "Ciphertext",
    "EncryptedNumber",
    "FixedPoint",
    "PrivateKey",
    "PublicKey",
    "__version__",
    "generate_keypair",
]
