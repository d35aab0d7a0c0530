"""What the benchmarks say of repeated measures (slices of one run)."""

from __future__ import annotations

import math
import statistics


def mean_and_error(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error (0 for one value; (0, 0) for none)."""
    if not values:
        return 0.0, 0.0
    m = statistics.fmean(values)
    return m, (statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0)
