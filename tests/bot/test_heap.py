"""Collection pauses: an index loads with the collector paused, and it comes back."""

from __future__ import annotations

import gc

import pytest

from bot.ops import heap


def test_the_collector_is_paused_while_an_index_loads_and_resumes_after() -> None:
    assert gc.isenabled()
    with heap.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), heap.paused():
        raise RuntimeError("a load that fails")
    assert gc.isenabled()


def test_a_pause_leaves_a_collector_turned_off_elsewhere_off() -> None:
    gc.disable()
    try:
        with heap.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
