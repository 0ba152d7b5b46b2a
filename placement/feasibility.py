"""Which devices a request may take: the filters, in the order explanations report them.

A device is feasible for a request when it is available on a ready node, carries the
request's selector labels (its own or its node's), runs the asked Android version, sits on a
node whose taints the request tolerates, and has at least the minimum cpu, memory and
storage. :func:`filter_chain` applies the filters one after another, so an explanation can
name the one that removed the last candidates.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from placement.arrays import BoolArray, FleetArrays
from placement.plan import Binding
from placement.problem import Request, Toleration

#: Slack on resource comparisons (cores are floats).
EPSILON = 1e-9

#: Resource filters in ``RESOURCE_COLUMNS`` order.
RESOURCE_BINDINGS = (Binding.CPU, Binding.MEMORY, Binding.STORAGE)


def selector_mask(fleet: FleetArrays, selector: Mapping[str, str]) -> BoolArray:
    """``(D,)`` devices whose labels (over their node's) include every ``key=value``."""
    mask = np.ones(fleet.num_devices, dtype=np.bool_)
    for item in selector.items():
        rows = fleet.label_index.get(item)
        if rows is None:
            return np.zeros(fleet.num_devices, dtype=np.bool_)
        hit = np.zeros(fleet.num_devices, dtype=np.bool_)
        hit[rows] = True
        mask &= hit
    return mask


def android_mask(fleet: FleetArrays, version: str | None) -> BoolArray:
    """``(D,)`` devices running ``version`` (every device when ``None``)."""
    if version is None:
        return np.ones(fleet.num_devices, dtype=np.bool_)
    code = fleet.android_codes.get(version)
    if code is None:
        return np.zeros(fleet.num_devices, dtype=np.bool_)
    return np.asarray(fleet.device_android == code)


def tolerated_nodes(fleet: FleetArrays, tolerations: tuple[Toleration, ...]) -> BoolArray:
    """``(N,)`` nodes all of whose taints ``tolerations`` tolerate."""
    return np.fromiter(
        (all(t.is_tolerated_by(tolerations) for t in taints) for taints in fleet.node_taints),
        dtype=np.bool_,
        count=fleet.num_nodes,
    )


def filter_chain(
    fleet: FleetArrays,
    request: Request,
    tolerated: BoolArray | None = None,
    *,
    whole_fleet: bool = False,
) -> list[tuple[Binding, BoolArray]]:
    """The request's filters in order, each with the ``(D,)`` devices still standing after it.

    The last mask is the request's feasible set. A filter that removes nothing is still
    listed, so the first one whose mask is empty is the binding constraint. ``tolerated`` is
    ``tolerated_nodes(fleet, request.tolerations)`` when the caller has it already. With
    ``whole_fleet`` the chain starts from every device that is not retired, whatever its
    state or its node's: what the request could get some day, not what it can get now.
    """
    mask = fleet.device_present if whole_fleet else fleet.assignable
    chain: list[tuple[Binding, BoolArray]] = [(Binding.NO_READY_DEVICE, mask)]
    if request.selector:
        mask = mask & selector_mask(fleet, request.selector)
    chain.append((Binding.LABEL_SELECTOR, mask))
    if request.android_version is not None:
        mask = mask & android_mask(fleet, request.android_version)
    chain.append((Binding.ANDROID_VERSION, mask))
    if tolerated is None:
        tolerated = tolerated_nodes(fleet, request.tolerations)
    mask = mask & tolerated[fleet.device_node]
    chain.append((Binding.TAINTS, mask))
    for column, binding in enumerate(RESOURCE_BINDINGS):
        wanted = request.minimum[column]
        if wanted > 0:
            mask = mask & (fleet.device_capacity[:, column] >= wanted - EPSILON)
        chain.append((binding, mask))
    return chain


def feasible_mask(
    fleet: FleetArrays, request: Request, tolerated: BoolArray | None = None
) -> BoolArray:
    """``(D,)`` the devices ``request`` may take (``tolerated`` as in :func:`filter_chain`)."""
    return filter_chain(fleet, request, tolerated)[-1][1]
