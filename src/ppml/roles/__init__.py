"""The two parties: the customer (keys, encryption, decryption) and the server (prediction)."""
