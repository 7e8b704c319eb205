"""Every unit test here leaves Python's garbage collector as it found it: starting a service
(``run_service``) settles it for the whole process (``sagakit.ops.gc_pauses``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sagakit.ops import gc_pauses


@pytest.fixture(autouse=True)
def _collector_as_found() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    if gc_pauses._observe in gc.callbacks:
        gc.callbacks.remove(gc_pauses._observe)
