"""Predictor adapters: each turns a network into a :class:`Predictor`."""

from .base import Predictor

__all__ = ["Predictor"]
