"""Vectorized best fit: the fast path for one request, and the baseline every solver beats.

A device is leased whole, so "best fit" means the device whose resources exceed the request's
minimum the least (normalized per resource over the candidates). Under ``binpack`` ties go
toward devices on busier nodes, so that idle nodes stay free to drain; under the spreading
strategies (``spread``, ``balanced``, ``least_loaded``) the emptiest node comes first and
the fit only breaks ties between its devices.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from placement.model import CandidateDevices, FloatArray

#: Weight of node occupancy against normalized waste (waste dominates; occupancy breaks ties).
PACKING_WEIGHT = 0.1


#: Strategies that prefer the least occupied node over the tightest fit.
SPREADING = frozenset({"spread", "balanced", "least_loaded"})


def best_fit_scores(
    candidates: CandidateDevices, minimum: FloatArray, strategy: str = "binpack"
) -> FloatArray:
    """Lower is better: normalized surplus over ``minimum`` minus a packing bonus, or, for
    the spreading strategies, node occupancy first (each unit of it outweighs any waste)."""
    if len(candidates) == 0:
        return np.zeros(0)
    surplus = candidates.capacity - minimum
    scale = np.maximum(candidates.capacity.max(axis=0), 1e-9)
    waste = (surplus / scale).sum(axis=1)
    if strategy in SPREADING:
        return np.asarray(candidates.node_occupancy * 10.0 + waste / 10.0, dtype=np.float64)
    return np.asarray(waste - PACKING_WEIGHT * candidates.node_occupancy, dtype=np.float64)


def rank_best_fit(
    candidates: CandidateDevices,
    minimum: FloatArray,
    maximum: FloatArray | None = None,
    strategy: str = "binpack",
) -> npt.NDArray[np.intp]:
    """Row indices of the candidates within ``[minimum, maximum]``, best fit first.

    ``maximum`` is what the tenant's quota still admits: a device larger than that would be
    refused, so it is no candidate at all.
    """
    if len(candidates) == 0:
        return np.zeros(0, dtype=np.intp)
    fits = np.all(candidates.capacity >= minimum - 1e-9, axis=1)
    if maximum is not None:
        fits &= np.all(candidates.capacity <= maximum + 1e-9, axis=1)
    scores = best_fit_scores(candidates, minimum, strategy)
    order = np.argsort(scores, kind="stable")
    return np.asarray(order[fits[order]], dtype=np.intp)
