"""`neurodyn simulate eeg-cohort`: HBN-layout files the real EEGLAB reader recognises."""

from __future__ import annotations

import numpy as np

from neurodyn.io.registry import read


def test_eeg_cohort_is_read_as_hbn(cli, tmp_path):
    out = tmp_path / "hbn"
    res = cli("simulate", "eeg-cohort", "--subjects", "2", "--duration", "60", "--fs", "100",
              "--out", out, "--seed", "1")
    assert res.exit_code == 0, res.output
    files = sorted(out.glob("NDAR*/EEG/raw/RestingState.set"))
    assert len(files) == 2 and (out / "participants.tsv").is_file()
    [rec] = read(files[1])
    assert rec.subject == "NDARSIM00002" and rec.meta["layout"] == "hbn-rest"
    assert rec.n_channels == 129 and rec.fs == 100 and rec.n_samples == 6000
    ev = rec.events
    closed = ev[ev["label"] == "eyes_closed"]
    assert list(closed["onset"]) == [20.0] and list(closed["offset"]) == [60.0]
    # eyes closed: more alpha power on the posterior-weighted channels
    x, t = rec.traces[:, -2], rec.times
    spec = lambda seg: np.abs(np.fft.rfft(seg - seg.mean())) ** 2  # noqa: E731
    f = np.fft.rfftfreq(2000, 1 / 100)
    band = (f >= 8) & (f <= 12)
    assert spec(x[(t >= 30) & (t < 50)])[band].sum() > 4 * spec(x[t < 20])[band].sum()
    res = cli("simulate", "eeg-cohort", "--subjects", "1", "--out", out)
    assert res.exit_code == 2 and "exists" in res.output
