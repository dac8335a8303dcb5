"""The ``ppml`` command line: thin commands over the library, one per role's step."""
