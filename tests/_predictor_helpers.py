"""Toy predictors shared by the engine and benchmark-script tests."""

from __future__ import annotations

import contextlib

import torch


class PositionReader:
    """Predicts a distribution over the letters at a few chosen positions only."""

    alphabet = "ABCD"

    def __init__(self, positions):
        self.positions = list(positions)

    def __call__(self, x):
        logits = 6.0 * x[:, self.positions, :]  # (N, P, letters): confident only if the letter is kept
        return {"y": torch.softmax(logits, -1)}


class ArithmeticRecorder(PositionReader):
    """Records, for every forward and every backward pass through it, whether its ``arithmetic()``
    context was active (``forward_seen``, ``seen``)."""

    def __init__(self, positions):
        super().__init__(positions)
        self.active = False
        self.forward_seen: list[bool] = []
        self.seen: list[bool] = []

    @contextlib.contextmanager
    def arithmetic(self):
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def __call__(self, x):
        self.forward_seen.append(self.active)
        out = super().__call__(x)
        if out["y"].requires_grad:
            out["y"].register_hook(lambda g: self.seen.append(self.active) or g)
        return out
