"""FINN's Streamline without the passes that cannot change the model.

FINN's ``Streamline`` applies about twenty transformations and, after each, the same five
tidy-ups (identity removal, node and tensor names, data types, data layouts): some 130
transformations, each on a deep copy and followed by qonnx's cleanup, though most find nothing
to do. ``ModelWrapper.transform`` applies a transformation until it reports no change, so its
result is a fixed point of that transformation: applying it again before anything else has
changed the model gives the same model. :func:`apply_skipping_noops` runs FINN's own sequence
(recorded from ``Streamline.apply``, so it follows FINN's list), skips a transformation when
the model is unchanged since that transformation's last application, and copies the model
once rather than before every step. The result is the
model FINN's ``Streamline`` gives, byte for byte (``tests/test_lowering_skip_noops.py``).
"""

from __future__ import annotations

import copy

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation


class _Recorder:
    """Stands in for the model while a composite transformation's ``apply`` runs: records
    the transformations it would apply, in order."""

    def __init__(self) -> None:
        self.calls: list[Transformation] = []

    def transform(self, transformation: Transformation, *args, **kwargs) -> _Recorder:
        if args or kwargs:
            raise TypeError("a non-default transform call: replay it as it is")
        self.calls.append(transformation)
        return self


def recorded_sequence(composite: Transformation) -> list[Transformation] | None:
    """The transformations ``composite.apply`` applies one after the other, or None when it
    does more than apply transformations with the default options."""
    recorder = _Recorder()
    try:
        composite.apply(recorder)
    except (AttributeError, TypeError):
        return None
    return recorder.calls


def _key(transformation: Transformation) -> tuple:
    return type(transformation), tuple(sorted((k, repr(v)) for k, v in vars(transformation).items()))


def apply_skipping_noops(model: ModelWrapper, composite: Transformation) -> ModelWrapper:
    """``model.transform(composite)``, skipping the steps that cannot change the model."""
    sequence = recorded_sequence(composite)
    if sequence is None:
        return model.transform(composite)
    fixed: set[tuple] = set()  # transformations the current model is a fixed point of
    state = model.model.SerializeToString()
    model = copy.deepcopy(model)  # one copy, then the steps work on it in place
    for transformation in sequence:
        key = _key(transformation)
        if key in fixed:
            continue
        model = model.transform(transformation, make_deepcopy=False)
        after = model.model.SerializeToString()
        if after != state:
            fixed.clear()
            state = after
        fixed.add(key)
    return model
