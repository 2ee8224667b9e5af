"""Great-circle distances and the spatial index that turns "every volunteer × every mission" into candidate pairs.

The index is a grid over points on the sphere in 3-D (x, y, z in km), with cells as wide as the chord of the
maximum distance: two points within `max_km` along the surface are within one chord in every axis, so they sit in
the same or adjacent cells. Unlike a latitude/longitude grid it needs no per-latitude cell width and has no
special case at the poles or the antimeridian (Wallis-et-Futuna, Saint-Pierre-et-Miquelon, Réunion alike).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def haversine_km_array(
    lat1: FloatArray | float, lon1: FloatArray | float, lat2: FloatArray | float, lon2: FloatArray | float
) -> FloatArray:
    """The same formula on arrays (degrees), broadcast like numpy does."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((phi2 - phi1) / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    result: FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return result


def _cells(lat: FloatArray, lon: FloatArray, size_km: float) -> IntArray:
    phi, lam = np.radians(lat), np.radians(lon)
    xyz = EARTH_RADIUS_KM * np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))
    cells: IntArray = np.floor(xyz / size_km).astype(np.int64)
    return cells


def pairs_within(
    a_lat: FloatArray, a_lon: FloatArray, b_lat: FloatArray, b_lon: FloatArray, max_km: float
) -> tuple[IntArray, IntArray, FloatArray]:
    """Every (i, j, km) with point a[i] within `max_km` of point b[j], sorted by i then j."""
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    if len(a_lat) == 0 or len(b_lat) == 0:
        return empty
    # Chord of the maximum arc, a hair wider so that rounding never drops a pair exactly at the limit.
    chord = 2 * EARTH_RADIUS_KM * math.sin(min(max_km / (2 * EARTH_RADIUS_KM), math.pi / 2)) * (1 + 1e-9) + 1e-9
    b_cells = _cells(b_lat, b_lon, chord)
    b_by_cell: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for index, cell in enumerate(map(tuple, b_cells.tolist())):
        b_by_cell[cell].append(index)
    a_cells = _cells(a_lat, a_lon, chord)
    occupied, inverse = np.unique(a_cells, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    bounds = np.searchsorted(inverse.ravel()[order], np.arange(len(occupied) + 1))
    steps = [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)]
    out_i: list[IntArray] = []
    out_j: list[IntArray] = []
    out_km: list[FloatArray] = []
    for c, (x, y, z) in enumerate(occupied.tolist()):
        near = [b for dx, dy, dz in steps for b in b_by_cell.get((x + dx, y + dy, z + dz), ())]
        if not near:
            continue
        ia = order[bounds[c] : bounds[c + 1]]
        jb = np.array(sorted(near), dtype=np.int64)
        km = haversine_km_array(a_lat[ia][:, None], a_lon[ia][:, None], b_lat[jb][None, :], b_lon[jb][None, :])
        rows, cols = np.nonzero(km <= max_km)
        out_i.append(ia[rows])
        out_j.append(jb[cols])
        out_km.append(km[rows, cols])
    if not out_i:
        return empty
    i, j, km = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_km)
    by_pair = np.lexsort((j, i))
    return i[by_pair], j[by_pair], km[by_pair]
