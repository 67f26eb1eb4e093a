"""Self-describing HDF5: dimension names, units and group names of neurodyn's files.

Every dataset a stage writes gets HDF5 dimension scales (the netCDF-4 convention, so
``xarray.open_dataset(path, engine="h5netcdf", group=...)`` names its axes) and a ``units``
attribute, applied by :func:`annotate` when :func:`neurodyn.io.store.atomic_h5` closes a
file. The dimension names and units of each dataset are declared once, here, in
:data:`RULES`; a dataset no rule matches gets dims ``<name>_dim<i>`` so the file still opens.

Units follow CF/UDUNITS: ``"s"``, ``"Hz"``, ``"1"`` for dimensionless quantities, ``""`` for
labels, indices, categories and flags. A 1-D dataset named like its dimension (``time``) is
that dimension's coordinate; other dimensions get a netCDF "dimension but not a variable"
dataset (no data), at the root of the file, in each recording's group of per-recording files,
or in the first group below a same-named dimension of another length. Recording ids become group names with
:func:`group_name` (``/`` as ``%2F``); :func:`recording_id` also decodes the ``|`` of older files.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from urllib.parse import quote, unquote

import h5py

#: netCDF-4 marker of a dimension scale that is not a variable (read by netCDF-C, h5netcdf).
NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."

#: Groups that only hold one group per item; dimensions are never created directly in them.
CONTAINERS = ("recordings", "connectome")
#: Stages whose files hold one top-level group per recording (dimensions are created there).
PER_RECORDING = ("states", "bicluster", "compare")

_S = "s"
_1 = "1"
_ = ""
_FROM_GROUP = "@units"  # "@<attr>": the parent group's attribute (a recording's ``units``)

# (path pattern, dims, units); the first rule whose pattern matches the dataset's path
# (fnmatch, ``*`` crosses ``/``) and whose dims have the dataset's rank applies.
_RECORDINGS: list[tuple[str, tuple[str, ...], str]] = [
    ("recordings/*/traces", ("time", "channel"), _FROM_GROUP),
    ("recordings/*/mask", ("time", "channel"), _),
    ("recordings/*/labels", ("channel",), _),
    ("recordings/*/channel_info/*", ("channel",), _),
    ("connectome/*/labels", ("neuron",), _),
    ("connectome/*/weight", ("synapse",), _1),
    ("connectome/*/*", ("synapse",), _),
]
_GROUND_TRUTH: list[tuple[str, tuple[str, ...], str]] = [  # of the simulators
    ("ground_truth/intervals", ("group", "bound"), _S),
    ("ground_truth/membership", ("neuron",), _),
    ("ground_truth/present", ("recording", "neuron"), _),
    ("ground_truth/adjacency", ("state", "neuron", "source"), _),
    ("ground_truth/connectome", ("neuron", "source"), _),
    ("ground_truth/strength", ("neuron", "source"), _1),
    ("ground_truth/weights", ("state", "neuron", "source"), _1),
    ("ground_truth/bias", ("state", "neuron"), _1),
    ("ground_truth/basis", ("lag",), _1),
    ("ground_truth/initial", ("state",), _1),
    ("ground_truth/transition", ("state", "next_state"), _1),
    ("ground_truth/recording_stops", ("recording",), _),
    ("ground_truth/starts", ("sequence",), _),
    ("ground_truth/stops", ("sequence",), _),
    ("ground_truth/states", ("bin",), _),
    ("ground_truth/clusters", ("neuron",), _),
    ("ground_truth/d", ("neuron",), _1),
    ("ground_truth/r", ("neuron",), _1),
    ("ground_truth/latent", ("cluster", "bin", "latent_dim"), _1),
    ("ground_truth/A", ("state", "latent_dim", "latent_dim_j"), _1),
    ("ground_truth/Q", ("state", "latent_dim", "latent_dim_j"), _1),
]
_COMMON: list[tuple[str, tuple[str, ...], str]] = [
    ("*model_selection/values", ("candidate",), _),
    ("*model_selection/scores", ("candidate", "fold"), "@unit"),
    ("*model_selection/*", ("candidate",), "@unit"),
    ("*events/onset", ("event",), _S),
    ("*events/offset", ("event",), _S),
    ("*events/*", ("event",), _),
    ("time", ("time",), _S),
    ("*/time", ("time",), _S),
    ("labels", ("neuron",), _),
    ("*/labels", ("neuron",), _),
    ("pairs", ("pair", "endpoint"), _),
    ("windows", ("window", "bound"), _S),
    ("animals", ("recording",), _),
]
_STAGES: dict[str, list[tuple[str, tuple[str, ...], str]]] = {
    "affinity": [
        ("observed/pair_index", ("row",), _),
        ("observed/offsets", ("recording_bound",), _),
        ("observed/values", ("row", "window"), _1),
        ("observed/mask", ("row", "window"), _),
        ("affinity", ("pair", "window", "recording"), _1),
        ("mask", ("pair", "window", "recording"), _),
        ("present", ("recording", "neuron"), _),
    ],
    "factorize": [
        ("factors/pairs", ("pair", "component"), _1),
        ("factors/time", ("window", "component"), _1),
        ("factors/animal", ("recording", "component"), _1),
        ("factors/weights", ("component",), _1),
        ("components/matrices", ("component", "neuron", "neuron_j"), _1),
        ("rank_selection/ranks", ("rank",), _),
        ("rank_selection/scan_animals", ("scan_recording",), _),
        ("rank_selection/*", ("rank",), _1),
        ("restarts/errors", ("restart",), _1),
        ("restarts/*", ("restart",), _),
    ],
    "communities": [
        ("components_used", ("component",), _),
        ("component_*/block_matrix", ("block", "block_j"), _1),
        ("component_*/membership", ("neuron",), _),
        ("component_*/levels/*/membership", ("node",), _),
        ("overview/activity", ("entry", "window"), _1),
        ("overview/*", ("entry",), _),
    ],
    "states": [
        ("*/posterior", ("time", "state"), _1),
        ("*/viterbi", ("time",), _),
        ("*/weights", ("state", "neuron", "source"), _1),
        ("*/bias", ("state", "neuron"), _1),
        ("*/basis", ("lag",), _1),
        ("*/transition", ("state", "next_state"), _1),
        ("*/initial", ("state",), _1),
        ("*/loglik_trace", ("iteration",), "nats"),
        ("*/tau_trace", ("tau_iteration",), "bins"),
        ("*/restart_objectives", ("restart",), "nats"),
        ("*/noise_var", ("neuron",), _1),
        ("*/noise_var", ("state", "neuron"), _1),
        ("*/W0", ("neuron", "source"), _1),
        ("*/adjacency", ("neuron", "source"), _),
        ("*/adjacency_prob", ("neuron", "source", "connection_class"), _1),
        ("*/adjacency_prior", ("connection_class",), _1),
        ("*/adjacency_prior", ("neuron", "source", "connection_class"), _1),
        ("*/strength", ("state",), _1),
        ("*/strength", (), _1),
        ("*/sequence_starts", ("sequence",), _),
        ("*/sequence_stops", ("sequence",), _),
        ("*/dropped", ("dropped",), _),
        # Gaussian HMM on EEG features (--features bandpower|tde)
        ("*/means", ("state", "feature"), _1),
        ("*/covariances", ("state", "feature"), _1),
        ("*/covariances", ("state", "feature", "feature_j"), _1),
        ("*/power_maps", ("state", "neuron", "band"), "dB"),
        ("*/spectra", ("state", "neuron", "frequency"), "V^2/Hz"),
        ("*/frequencies", ("frequency",), "Hz"),
        ("*/bands", ("band",), _),
        ("*/band_edges", ("band", "bound"), "Hz"),
        ("*/occupancy", ("state",), _1),
        ("*/dwell_s", ("state",), _S),
        ("*/expected_dwell_s", ("state",), _S),
    ],
    "bicluster": [
        ("*/latent/*", ("cluster", "time", "latent_dim"), _1),
        ("*/chain_final_clusters", ("chain", "neuron"), _),
        ("*/neuron_clusters", ("neuron",), _),
        ("*/neuron_similarity", ("neuron", "neuron_j"), _1),
        ("*/state_sequence", ("time",), _),
        ("*/state_similarity", ("time_bin", "time_bin_j"), _1),
        ("*/state_similarity_bins", ("time_bin",), _),
        ("*/n_clusters_posterior", ("cluster_count",), _1),
        ("*/parameters/state_occupancy", ("state",), _1),
        ("*/parameters/*", ("neuron",), _1),
        ("*/traces/loglik", ("chain", "draw"), "nats"),
        ("*/traces/*_all", ("chain", "sweep"), _),
        ("*/traces/*", ("chain", "draw"), _),
    ],
    "compare": [
        ("*/inferred", ("neuron", "neuron_j"), _1),
        ("*/anatomical", ("neuron", "neuron_j"), _),
        ("*/order", ("neuron",), _),
        ("*/null_*", ("permutation",), _1),
        ("*/only_inferred", ("only_inferred",), _),
        ("*/only_connectome", ("only_connectome",), _),
    ],
}


def rules_for(stage: str) -> list[tuple[str, tuple[str, ...], str]]:
    """The rules that apply to a file of ``stage`` (stage-specific first)."""
    return _RECORDINGS + _STAGES.get(stage, []) + _GROUND_TRUTH + _COMMON


def describe(path: str, ndim: int, stage: str) -> tuple[tuple[str, ...], str | None]:
    """Dimension names and units of the dataset at ``path`` (no leading ``/``) in a ``stage``
    file; units ``None`` when no rule matched (dims are then ``<name>_dim<i>``)."""
    for pattern, dims, units in rules_for(stage):
        if len(dims) == ndim and fnmatch.fnmatchcase(path, pattern):
            return dims, units
    base = path.rsplit("/", 1)[-1]
    return tuple(f"{base}_dim{i}" for i in range(ndim)), None


# -- group names ------------------------------------------------------------------------
def group_name(rec_id: str) -> str:
    """HDF5 group name of a recording id: reversible, readable, no ``/`` or ``|``.

    ``"spikes/all_unit"`` -> ``"spikes%2Fall_unit"`` (percent-encoding of ``/``, ``%``, ``|``
    and a leading ``.``).
    """
    name = quote(rec_id, safe="".join(c for c in map(chr, range(32, 127)) if c not in "/%|"))
    return "%2E" + name[1:] if name.startswith(".") else name


def recording_id(name: str) -> str:
    """Recording id of a group name written by :func:`group_name` or by older versions
    (which wrote ``/`` as ``|``)."""
    name = name.rsplit("/", 1)[-1]
    return unquote(name.replace("|", "/"))


# -- strings ----------------------------------------------------------------------------
def is_dimension_only(ds: h5py.Dataset) -> bool:
    """True for a netCDF dimension that is not a variable (holds no data)."""
    name = ds.attrs.get("NAME", b"")
    if isinstance(name, str):
        name = name.encode()
    return NOT_A_VARIABLE.encode() in name


def datasets(group: h5py.Group) -> Iterator[tuple[str, h5py.Dataset]]:
    """Datasets under ``group`` as (path relative to the file root, dataset), parents first,
    skipping dimension-only datasets."""
    queue = [group]
    while queue:
        g = queue.pop(0)
        subgroups = []
        for item in g.values():
            if isinstance(item, h5py.Group):
                subgroups.append(item)
            elif isinstance(item, h5py.Dataset) and not is_dimension_only(item):
                yield item.name.lstrip("/"), item
        queue.extend(subgroups)


# -- annotation -------------------------------------------------------------------------
def annotate(f: h5py.File, stage: str | None = None) -> None:
    """Attach dimension scales and ``units`` to every dataset of an open, writable file.

    Idempotent: datasets that already carry dimension scales are left as they are.
    """
    stage = stage or _str(f.attrs.get("stage", ""))
    plan = []
    for path, ds in datasets(f):
        if ds.shape is None or _has_scales(ds):
            continue
        dims, units = describe(path, ds.ndim, stage)
        if units is not None and units.startswith("@"):
            units = _str(ds.parent.attrs.get(units[1:], ""))
        plan.append((path, ds, dims, units))
    # coordinates first: a 1-D dataset named like its dimension is that dimension's scale
    for path, ds, dims, _units in plan:
        if dims == (path.rsplit("/", 1)[-1],) and not ds.is_scale:
            ds.make_scale(dims[0])
    for _path, ds, dims, units in plan:
        if "units" not in ds.attrs:
            ds.attrs["units"] = units if units is not None else ""
        if ds.is_scale:
            continue
        for axis, (dim, size) in enumerate(zip(dims, ds.shape)):
            ds.dims[axis].attach_scale(_scale(ds.parent, dim, size, stage))


def _str(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _has_scales(ds: h5py.Dataset) -> bool:
    """True when every axis has a dimension scale of this file; drops dangling ones (an
    HDF5 object copy from another file keeps references into that file)."""
    if ds.is_scale:
        return True
    if ds.ndim == 0 or not all(len(d) for d in ds.dims):
        return False
    try:
        for d in ds.dims:
            d[0]
        return True
    except (KeyError, ValueError, RuntimeError):
        for key in ("DIMENSION_LIST", "REFERENCE_LIST"):
            if key in ds.attrs:
                del ds.attrs[key]
        return False


def _chain(group: h5py.Group) -> list[h5py.Group]:
    """The group and its ancestors, root first."""
    out = [group]
    while out[0].name != "/":
        out.insert(0, out[0].parent)
    return out


def _scale(group: h5py.Group, dim: str, size: int, stage: str) -> h5py.Dataset:
    """The dimension scale named ``dim`` of length ``size`` visible from ``group``: the
    nearest one up the hierarchy when its length matches, otherwise a new one."""
    chain = _chain(group)
    nearest = None
    for g in reversed(chain):
        obj = g.get(dim)
        if isinstance(obj, h5py.Dataset) and obj.is_scale:
            nearest = g
            if obj.shape == (size,):
                return obj
            break
    # create it as high as possible, below a scale of the same name but another length,
    # where the name is free
    start = 0 if nearest is None else chain.index(nearest) + 1
    start = max(start, _owner_depth(chain, stage))
    for g in chain[start:]:
        if dim not in g:
            return _dimension_only(g, dim, size)
    renamed = f"{dim}_{size}"
    obj = group.get(renamed)
    if isinstance(obj, h5py.Dataset) and obj.is_scale and obj.shape == (size,):
        return obj
    return _dimension_only(group, renamed if renamed not in group else _free(group, dim), size)


def _owner_depth(chain: list[h5py.Group], stage: str) -> int:
    """Index in ``chain`` of the highest group new dimensions may go in: the recording's
    group in containers (``recordings/<id>``) and per-recording files, else the root."""
    if len(chain) == 1:
        return 0
    top = chain[1].name.lstrip("/")
    depth = 2 if top in CONTAINERS else 1 if stage in PER_RECORDING else 0
    return min(depth, len(chain) - 1)


def _free(group: h5py.Group, dim: str) -> str:
    k = 2
    while f"{dim}_{k}" in group:
        k += 1
    return f"{dim}_{k}"


def _dimension_only(group: h5py.Group, dim: str, size: int) -> h5py.Dataset:
    ds = group.create_dataset(dim, shape=(size,), dtype="f4")
    ds.make_scale(f"{NOT_A_VARIABLE}{size:10d}")
    return ds

