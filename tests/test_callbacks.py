"""bpmon.callbacks.feed: whatever a trainer logs, the monitor gets one ``log`` call with its
numbers only, under the names it takes. Needs no trainer and no torch for the plain cases."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bpmon.callbacks import PANEL, accepts_metrics, feed


class Panel:
    """A monitor that takes the panel figures only (today's ``Monitor.log``)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def log(
        self,
        *,
        loss: Any = None,
        accuracy: Any = None,
        test_accuracy: Any = None,
        lr: Any = None,
        epoch: int | None = None,
    ) -> None:
        call = {"loss": loss, "accuracy": accuracy, "test_accuracy": test_accuracy, "lr": lr}
        self.calls.append({k: v for k, v in call.items() if v is not None} | {"epoch": epoch})


class Named(Panel):
    """A monitor that keeps any named number (``log(**metrics)``)."""

    def log(self, *, epoch: int | None = None, **metrics: Any) -> None:  # type: ignore[override]
        self.calls.append({**metrics, "epoch": epoch})


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
    st.lists(st.floats(), max_size=2),
)
logs = st.dictionaries(
    st.one_of(st.sampled_from([*PANEL, "epoch", "eval_loss", "grad_norm"]), st.text(max_size=8)),
    values,
    max_size=8,
)


def test_accepts_metrics_reads_the_signature() -> None:
    assert not accepts_metrics(Panel())
    assert accepts_metrics(Named())


@given(logs, st.one_of(st.none(), st.floats()))
def test_only_numbers_reach_the_monitor_under_names_it_takes(
    logged: dict[str, Any], epoch: float | None
) -> None:
    for monitor, metrics in ((Panel(), False), (Named(), True)):
        feed(monitor, logged, metrics=metrics, epoch=epoch)
        numeric = {
            k: float(v)
            for k, v in logged.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k != "epoch"
        }
        expected = {k: v for k, v in numeric.items() if metrics or k in PANEL}
        whole = epoch is not None and math.isfinite(epoch) and epoch >= 0
        if not expected and not whole:
            assert monitor.calls == []
            continue
        assert len(monitor.calls) == 1
        call = dict(monitor.calls[0])
        assert call.pop("epoch") == (math.floor(epoch) if whole and epoch is not None else None)
        assert call.keys() == expected.keys()
        for key, value in expected.items():
            assert call[key] == value or (math.isnan(call[key]) and math.isnan(value))
