"""NWB export (pynwb): one file per recording.

Layout of ``<recording>.nwb``:

- ``acquisition/traces``: the recording (an ``ElectricalSeries`` over an electrodes table for
  EEG, a ``TimeSeries`` otherwise), in its unit, with its sampling rate or time stamps;
- ``intervals/events``: the recording's events (``label`` column);
- ``processing/neurodyn``: ``channels`` (label and channel information per column of the
  traces); ``hmmglm_states`` (intervals of the HMM-GLM Viterbi path, ``state`` column) and
  ``hmmglm_posterior`` (time x state); ``bicluster_states`` and ``bicluster_neurons``
  (neuron label, cluster); ``communities`` (community of each channel in each NTF component,
  -1 where a channel was not analysed).
"""

from __future__ import annotations

import datetime as dt
import uuid
import warnings
from pathlib import Path

import numpy as np

from neurodyn.bicluster.result import PATH as BICLUSTER_PATH
from neurodyn.bicluster.result import BiclusterFit
from neurodyn.export.bundle import Bundle, Item, community_table, provenance_note, states_of
from neurodyn.hmmglm.result import PATH as STATES_PATH
from neurodyn.hmmglm.result import StatesFit
from neurodyn.io.outputs import atomic_path
from neurodyn.io.store import provenance


def write(bundle: Bundle, outdir: Path) -> list[Path]:
    from pynwb import NWBHDF5IO

    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for item in bundle.items:
        nwb = to_nwbfile(item, bundle)
        path = outdir / f"{item.name}.nwb"
        with atomic_path(path, bundle.inputs) as tmp, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")
            with NWBHDF5IO(str(tmp), "w") as io:
                io.write(nwb)
        written.append(path)
    return written


def _start_time(item: Item, bundle: Bundle) -> dt.datetime:
    rec_file = bundle.inputs[0]
    started = str(provenance(rec_file).get("started", ""))
    try:
        t = dt.datetime.fromisoformat(started)
    except ValueError:
        t = dt.datetime.now(dt.timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def to_nwbfile(item: Item, bundle: Bundle):
    """The ``pynwb.NWBFile`` of one recording and its results."""
    from pynwb import NWBFile, TimeSeries
    from pynwb.core import DynamicTable, VectorData
    from pynwb.epoch import TimeIntervals
    from pynwb.file import Subject

    rec = item.recording
    nwb = NWBFile(
        session_description=f"{rec.id} ({rec.modality}), exported by neurodyn from {bundle.rundir}",
        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"neurodyn:{bundle.rundir}:{rec.id}")),
        session_start_time=_start_time(item, bundle),
        source_script="neurodyn export --to nwb", source_script_file_name="neurodyn",
        subject=Subject(subject_id=rec.subject) if rec.subject else None,
        session_id=rec.id,
    )
    timing = ({"rate": float(rec.fs), "starting_time": float(rec.times[0])}
              if rec.time is None else {"timestamps": rec.times})
    data = rec.data
    description = f"{rec.modality} recording {rec.id}; channels in processing/neurodyn/channels"
    if rec.modality == "eeg":
        nwb.add_acquisition(_electrical_series(nwb, rec, data, timing, description))
    else:
        nwb.add_acquisition(TimeSeries(name="traces", data=data, unit=rec.units or "a.u.",
                                       description=description, **timing))
    if len(rec.events):
        ev = TimeIntervals(name="events", description="events of the recording")
        ev.add_column("label", "event label")
        for row in rec.events.itertuples():
            ev.add_interval(start_time=float(row.onset), stop_time=float(row.offset),
                            label=str(row.label))
        nwb.add_time_intervals(ev)

    mod = nwb.create_processing_module("neurodyn", "neurodyn results for this recording")
    cols = [VectorData(name="label", description="channel label", data=list(rec.labels))]
    if rec.channel_info is not None:
        for c in rec.channel_info.columns:
            if str(c) in ("label",):
                continue
            values = rec.channel_info[c].to_numpy()
            values = values.tolist() if values.dtype.kind in "biuf" else [str(x) for x in values]
            cols.append(VectorData(name=str(c), description=f"channel {c}", data=values))
    mod.add(DynamicTable(name="channels", description="one row per column of the traces",
                         columns=cols))
    if item.states is not None and STATES_PATH in item.states:
        st = item.states
        mod.add(_intervals("hmmglm_states", states_of(st, STATES_PATH, rec.fs),
                           "HMM-GLM Viterbi states; " + provenance_note(st)))
        mod.add(TimeSeries(name="hmmglm_posterior", data=st[StatesFit.posterior.name].values, unit="1",
                           timestamps=st["time"].values,
                           description="posterior probability of each state (time x state)"))
    if item.bicluster is not None and BICLUSTER_PATH in item.bicluster:
        bc = item.bicluster
        mod.add(_intervals("bicluster_states", states_of(bc, BICLUSTER_PATH, rec.fs),
                           "bi-clustering point-estimate states; " + provenance_note(bc)))
        mod.add(DynamicTable(name="bicluster_neurons", description="bi-clustering neuron clusters",
                             columns=[VectorData(name="label", description="neuron",
                                                 data=[str(x) for x in bc["neuron"].values]),
                                      VectorData(name="cluster", description="cluster",
                                                 data=bc[BiclusterFit.neuron_clusters.name].values.tolist())]))
    table = community_table(bundle.result("communities"), list(rec.labels))
    if table is not None:
        mod.add(DynamicTable(
            name="communities", description="community of each channel per NTF component "
            "(-1: not analysed); " + provenance_note(bundle.result("communities")),
            columns=[VectorData(name=c, description=c, data=table[c].tolist())
                     for c in table.columns]))
    return nwb


def _intervals(name: str, table, description: str):
    from pynwb.epoch import TimeIntervals

    ti = TimeIntervals(name=name, description=description)
    ti.add_column("state", "state index")
    for row in table.itertuples():
        ti.add_interval(start_time=float(row.start), stop_time=float(row.stop), state=int(row.state))
    return ti


def _electrical_series(nwb, rec, data, timing, description):
    from pynwb.ecephys import ElectricalSeries

    device = nwb.create_device(name="EEG", description="EEG amplifier")
    group = nwb.create_electrode_group(name="scalp", description="EEG electrodes",
                                       location="scalp", device=device)
    nwb.add_electrode_column("label", "electrode name")
    info = rec.channel_info
    for i, label in enumerate(rec.labels):
        pos = {}
        if info is not None and {"x", "y", "z"} <= set(info.columns):
            xyz = [float(info[c].iloc[i]) for c in ("x", "y", "z")]
            if np.all(np.isfinite(xyz)):
                pos = dict(zip(("x", "y", "z"), xyz))
        nwb.add_electrode(group=group, location="scalp", label=str(label), **pos)
    region = nwb.create_electrode_table_region(list(range(rec.n_channels)), "all electrodes")
    unit = rec.units or "V"
    conversion = 1.0 if unit == "V" else {"mV": 1e-3, "uV": 1e-6, "µV": 1e-6}.get(unit, 1.0)
    return ElectricalSeries(name="traces", data=data, electrodes=region, conversion=conversion,
                            description=description, **timing)
