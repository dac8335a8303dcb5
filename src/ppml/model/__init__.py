"""The server's model: a linear model on the spec's inputs, and how it is trained."""

from ppml.model.linear import LinearModel

__all__ = ["LinearModel"]
