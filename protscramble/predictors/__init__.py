"""Predictor adapters: each turns a network into a :class:`Predictor`."""

from .base import Predictor, arithmetic

__all__ = ["Predictor", "arithmetic"]
