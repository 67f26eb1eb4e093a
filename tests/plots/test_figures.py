"""Figures owned by the report area: style helpers, timeline, connectome comparison, draw_all."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import rgb_codes
from matplotlib.image import imread

from neurodyn.io.store import atomic_h5, put
from neurodyn.plots import style
from neurodyn.report.synthetic import make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("run")
    make_run(d, seed=0)
    return d


def _pixels(path: Path) -> np.ndarray:
    assert path.exists() and path.stat().st_size > 0
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    # not a blank canvas: many distinct colors
    assert np.unique(rgb_codes(img)).size > 20
    return img


def _differ(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return True
    return float(np.mean(np.any(a != b, axis=-1))) > 0.005


# -- style ------------------------------------------------------------------------------------
def test_colors_are_stable_and_colorblind_palette_first():
    assert style.colors(8) == list(style.OKABE_ITO)
    assert style.color(3) == style.color(3)
    assert style.color(-1) == style.BACKGROUND
    many = style.colors(20)
    assert len(set(many)) == 20


def test_group_order_and_display_order():
    g = np.array([2, -1, 0, 2, 0, 1])
    order = style.group_order(g)
    assert list(g[order]) == [0, 0, 1, 2, 2, -1]
    assert list(order[:2]) == [2, 4]  # stable within a group
    assert list(style.display_order(6, g)) == list(range(6))  # small: untouched
    big = np.arange(150) % 3
    o = style.display_order(150, big)
    assert np.all(np.diff(big[o]) >= 0)


def test_decimate_keeps_means_and_short_series():
    t = np.arange(10.0)
    y = np.arange(20.0).reshape(10, 2)
    assert style.decimate(t, y, 20)[1] is y
    tt, yy = style.decimate(t, y, 5)
    assert tt.shape == (5,) and yy.shape == (5, 2)
    assert np.allclose(yy[0], [1.0, 2.0])
    tz, z = style.decimate_labels(np.arange(10000.0), np.arange(10000) % 3, 1000)
    assert tz.size <= 1000 and set(np.unique(z)) <= {0, 1, 2}


def test_caption_says_what_is_shown_and_keeps_parameters_apart(tmp_path):
    import matplotlib.pyplot as plt

    src = style.Source("ntf.h5", "factorize", {"rank": 3, "method": "hals"}, 7)
    cap = style.Caption(sources=(src,)).says("Temporal loading of each component", "2 not drawn")
    assert cap.words() == "Temporal loading of each component. 2 not drawn."
    assert cap.data_line() == "Data: ntf.h5 (stage factorize, seed 7)."
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    style.add_caption(fig, cap)
    drawn = fig.texts[-1].get_text()
    assert "Temporal loading" in drawn and "seed 7" in drawn and "rank" not in drawn
    path = style.save(fig, tmp_path, "x")
    side = style.read_caption(path)
    assert side["caption"] == cap.words() and side["parameters"] == {"ntf.h5": src.parameters}


def test_amplitude_says_the_unit_in_words():
    assert style.amplitude(3.0, "z") == "3 SD"  # z-scored traces: standard deviations
    assert style.amplitude(0.5, "uV") == "0.5 uV" and style.amplitude(2.0, "") == "2 a.u."


def test_save_rejects_unknown_format(tmp_path):
    import matplotlib.pyplot as plt

    from neurodyn.params import ParamError

    fig = plt.figure()
    with pytest.raises(ParamError, match="unknown figure format") as exc:
        style.save(fig, tmp_path, "x", "bmp")
    assert exc.value.name == "format"  # the CLI reports it against --format
    plt.close(fig)


# -- timeline ----------------------------------------------------------------------------------
def test_timeline_figure_changes_with_data(run, tmp_path):
    from neurodyn.plots import timeline

    a = timeline.draw(run, tmp_path / "a", max_recordings=1)
    assert [p.name for p in a] == ["timeline_sim_animal0.png"]
    img_a = _pixels(a[0])
    # change only the bi-clustering state sequence of animal0
    with h5py.File(run / "bicluster.h5", "r") as f:
        z = f["sim%2Fanimal0/state_sequence"][()]
    other = tmp_path / "run2"
    other.mkdir()
    for name in ("recordings.h5", "states.h5", "ntf.h5"):
        (other / name).symlink_to(run / name)
    with atomic_h5(other / "bicluster.h5", stage="bicluster", seed=0) as f:
        g = f.create_group("sim|animal0")  # the name older versions wrote
        g.attrs["id"] = "sim/animal0"
        put(g, "state_sequence", np.roll(z, len(z) // 3))
    b = timeline.draw(other, tmp_path / "b", max_recordings=1)
    assert _differ(img_a, _pixels(b[0]))


def test_timeline_svg_and_pdf(run, tmp_path):
    import xml.etree.ElementTree as ET

    from neurodyn.plots import timeline

    [svg] = timeline.draw(run, tmp_path, "svg", max_recordings=1)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    paths = [e for e in root.iter() if e.tag.endswith("path")]
    texts = "".join(e.text or "" for e in root.iter() if e.tag.endswith("text"))  # fonttype none
    assert len(paths) > 20 and "time (s)" in texts and "sim/animal0" in texts
    [pdf] = timeline.draw(run, tmp_path, "pdf", max_recordings=1)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert b"/Type /Page" in data and b"/Image" in data  # a page with the state rasters


def test_timeline_long_recording_is_downsampled_for_display(tmp_path, saved_figures):
    from neurodyn.analysis.timeline import Timeline
    from neurodyn.plots.timeline import draw_timeline

    T = 50_000
    t = np.arange(T) / 10.0
    post = np.stack([np.sin(t / 50) ** 2, np.cos(t / 50) ** 2], 1)
    tl = Timeline("long", hmm_time=t, hmm_posterior=post, hmm_states=post.argmax(1),
                  bic_time=t, bic_states=(t // 300 % 3).astype(int))
    draw_timeline(tl, tmp_path, "svg")
    hmm, bic = saved_figures["timeline_long"].axes[:2]
    bands = [c.get_paths()[0].vertices for c in hmm.collections]  # one band per state
    assert len(bands) == 2 and all(len(v) <= 2 * style.MAX_POINTS + 10 for v in bands)
    assert abs(bands[0][:, 0].max() - t[-1]) < 10  # still the whole span
    [mesh] = bic.collections
    assert mesh.get_array().size <= style.MAX_POINTS  # state cells, not 50,000
    assert set(np.unique(mesh.get_array())) == {0, 1, 2}


def test_no_empty_panels(run, tmp_path, saved_figures):
    """One animal: no animal-loading panel; no events: no event row; both said in the caption."""
    from neurodyn.hmmglm import result as states_result
    from neurodyn.plots import ntf, states
    from neurodyn.recording import empty_events
    from neurodyn.tensor import result as ntf_result

    res = ntf_result.read(run / "ntf.h5")
    res.factors["animal"], res.animals = res.factors["animal"][:1], res.animals[:1]
    res.events = empty_events()
    with atomic_h5(tmp_path / "ntf.h5", stage=ntf_result.STAGE, params={}, seed=0) as f:
        ntf_result.write(f, res)
    ntf.draw(tmp_path / "ntf.h5", tmp_path / "f")
    fig = saved_figures["ntf_component_0"]
    panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert [a.get_ylabel() for a in panels][0] == "temporal loading" and len(panels) == 2
    assert not any(a.patches for a in panels)  # no bars, no event shading
    assert "One animal (sim/animal0): no animal-loading panel" in fig.neurodyn_caption.words()
    assert fig.axes[-1].get_ylabel() == "pattern weight (dimensionless)"  # colourbar with unit
    fits = states_result.read(run / "states.h5")
    for fit in fits.values():
        del fit.tree["events"]
    with atomic_h5(tmp_path / "states.h5", stage=states_result.STAGE, seed=0) as f:
        states_result.write(f, fits.values())
    states.draw(tmp_path / "states.h5", tmp_path / "f")
    fig = saved_figures["states_timeline_sim_animal0"]
    assert [a.get_ylabel() for a in fig.axes] == ["p(state)", "Viterbi"]
    assert "no events: no event row drawn" in fig.neurodyn_caption.words()


# -- compare -----------------------------------------------------------------------------------
def test_compare_figure_changes_with_data(run, tmp_path):
    from neurodyn.analysis.compare import compare_connectome
    from neurodyn.plots import compare

    small = tmp_path / "run"  # the run without HMM-GLM output: two sources, two figures
    small.mkdir()
    for name in ("recordings.h5", "communities.h5", "ntf.h5"):
        (small / name).symlink_to(run / name)
    p = compare_connectome(small, "planted", n_perm=20, seed=0, out=tmp_path / "c1.h5")
    a = compare.draw(p, tmp_path / "a")
    assert {x.name for x in a} == {"compare_communities.png", "compare_ntf.png"}
    img = {x.name: _pixels(x) for x in a}
    with h5py.File(p, "r+") as f:  # change the inferred matrix of the NTF source
        d = f["ntf/inferred"]
        d[...] = d[()][::-1, ::-1] + np.eye(d.shape[0])
    b = compare.draw(p, tmp_path / "b")
    changed = {x.name: _differ(img[x.name], _pixels(x)) for x in b}
    assert changed["compare_ntf.png"]
    assert not changed["compare_communities.png"]


# -- draw_all: the figure map ---------------------------------------------------------------
def test_draw_all_uses_the_figure_map_and_survives_broken_figures(run, tmp_path, monkeypatch):
    from neurodyn.report import draw_sections, figures, plot_function

    fn, why = plot_function("no-such-stage")
    assert fn is None and "no figure module" in why

    def good(path, outdir, fmt="png"):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        return [style.save(fig, outdir, "ok", fmt)]

    def bad(path, outdir, fmt="png"):
        raise RuntimeError("boom")

    monkeypatch.setitem(figures.FIGURES, "states", good)
    monkeypatch.setitem(figures.FIGURES, "bicluster", bad)
    out = draw_sections(run, "png", tmp_path / "figs")
    assert [p.name for p in out["states.h5"][0]] == ["ok.png"]
    assert out["bicluster.h5"][0] == [] and "boom" in out["bicluster.h5"][1][0]
    assert len(out["timeline"][0]) == 2


@pytest.mark.parametrize("width_in", [3.0, 6.4, 12.0])
def test_caption_fits_the_figure_width(width_in):
    """Long captions wrap to the figure they are drawn on, never past its edge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    words = " ".join(f"sentence {i} about what the figure shows." for i in range(12))
    cap = style.Caption(words, (style.Source("states.h5", "states", {}, 0),))
    fig, ax = plt.subplots(figsize=(width_in, 3))
    style.add_caption(fig, cap)
    fig.canvas.draw()
    box = fig.texts[-1].get_window_extent()
    assert box.x1 <= fig.bbox.x1 and box.y0 >= 0
    assert fig.texts[-1].get_text().count("\n") >= 2 and "seed 0" in fig.texts[-1].get_text()
    plt.close(fig)
