"""The self-contained HTML report, in Python and rendered in real headless Chromium."""

from __future__ import annotations

import base64
import html
import io
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers import rgb_codes, wait_for_services
from matplotlib.image import imread

from neurodyn.analysis.compare import compare_connectome
from neurodyn.analysis.timeline import align_partitions, partition_agreement, resample_labels
from neurodyn.errors import InputError
from neurodyn.report import build_report, key_numbers
from neurodyn.report.synthetic import make_run

SECTIONS = ["stage-recordings", "stage-ntf", "stage-communities", "stage-states",
            "stage-bicluster", "timeline", "stage-compare"]


class _Page(HTMLParser):
    """Collects section ids, <img> sources and the visible text of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.imgs: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id", ""))
        elif tag == "img":
            self.imgs.append(a.get("src", ""))
        elif tag in ("link", "script") and (a.get("href") or a.get("src")):
            self.links.append(a.get("href") or a.get("src"))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    return p


def _decode_image(src: str) -> np.ndarray:
    assert src.startswith("data:image/png;base64,"), src[:40]
    img = imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
    assert img.shape[0] > 50 and img.shape[1] > 50
    return img


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("run")
    make_run(d, seed=0)
    compare_connectome(d, "planted", n_perm=50, seed=0)
    build_report(d)
    return d


# -- timeline numbers -----------------------------------------------------------------------------
def test_partition_agreement_is_label_invariant():
    a = np.array([0, 0, 1, 1, 2, 2])
    assert partition_agreement(a, (a + 1) % 3) == pytest.approx((1.0, 1.0))
    ari, nmi = partition_agreement(a, np.array([0, 1, 0, 1, 0, 1]))
    assert ari < 0.1 and nmi < 0.1


def test_resample_and_align_on_common_grid():
    t_a = np.arange(0, 10, 0.5)  # fine grid
    z_a = (t_a >= 5).astype(int)
    t_b = np.arange(1, 12, 1.0)  # coarse, offset grid
    z_b = (t_b >= 5).astype(int) + 3
    grid, a, b = align_partitions(t_a, z_a, t_b, z_b)
    assert grid[0] == 1 and grid[-1] <= 9.5 and np.all(np.diff(grid) == 1)
    assert np.array_equal(a + 3, b)
    assert list(resample_labels([0.0, 1.0], [7, 8], [-1, 0.5, 1.0, 5])) == [7, 7, 8, 8]


# -- report ---------------------------------------------------------------------------------------
def test_report_has_every_section_and_embedded_images(run):
    html = (run / "report.html").read_text()
    page = _parse(html)
    assert page.sections == SECTIONS
    assert page.links == []  # nothing external
    assert len(page.imgs) >= 6  # 2 timelines + 4 comparison figures at least
    for src in page.imgs:
        _decode_image(src)
    text = " ".join(page.text)
    for needle in ("rank", "n_states", "heldout_loglik", "-812.5", "ARI", "NMI", "ROC AUC",
                   "sha256", "neurodyn_version", "planted"):
        assert needle in text or needle in html, needle


def test_report_agreement_numbers_match_timeline(run):
    from neurodyn.analysis.timeline import load_timeline

    tl = load_timeline(run, "sim/animal0")
    assert 0.5 < tl.ari < 1.0  # 10 % of bicluster labels were flipped
    assert f"{tl.ari:.4g}" in (run / "report.html").read_text()


def test_report_without_some_stages_and_with_incomplete_file(tmp_path, cli):
    make_run(tmp_path, seed=1)
    (tmp_path / "bicluster.h5").unlink()
    (tmp_path / "communities.h5").write_bytes(b"not hdf5")
    r = cli("report", tmp_path)
    assert r.exit_code == 0, r.output
    page = _parse((tmp_path / "report.html").read_text())
    assert page.sections == ["stage-recordings", "stage-ntf", "stage-states", "timeline"]
    assert "communities.h5: incomplete or unreadable" in " ".join(page.text)


def test_key_numbers_defensive(run):
    root, rows = key_numbers(run / "ntf.h5")
    assert root["loss"] == pytest.approx(0.123)
    assert any(r[1] == "time: rank" and r[2] == 3 for r in rows)


def test_report_errors(tmp_path, cli):
    with pytest.raises(InputError, match="no completed stage"):
        build_report(tmp_path)
    r = cli("report", tmp_path / "missing")
    assert r.exit_code == 2 and "not a run directory" in r.output


@pytest.fixture
def only_own_figures(monkeypatch):
    """Draw only the report area's own figures (timeline, compare): keeps CLI tests fast."""
    import neurodyn.report.figures as rep

    real = rep.plot_function
    monkeypatch.setattr(rep, "plot_function", lambda stage: real(stage)
                        if stage == "compare" else (None, "skipped in this test"))


def test_figures_command_formats(run, tmp_path, cli, only_own_figures):
    r = cli("figures", run, "--format", "svg,pdf", "--outdir", tmp_path)
    assert r.exit_code == 0, r.output
    for ext in ("svg", "pdf"):
        names = sorted(p.name for p in tmp_path.rglob(f"*.{ext}"))
        assert f"timeline_sim_animal0.{ext}" in names and f"compare_ntf.{ext}" in names
    r = cli("figures", run, "--format", "gif")
    assert r.exit_code == 2
    # a rerun replaces its own stale figures but never a user's file in the same folder
    folder = next(tmp_path.rglob("compare_ntf.svg")).parent
    (folder / "mine.svg").write_text("<svg/>")
    stale = folder / "stale_fig.svg"
    shutil.copy(folder / "compare_ntf.svg", stale)
    shutil.copy(folder / "compare_ntf.svg.json", str(stale) + ".json")
    assert cli("figures", run, "--format", "svg", "--outdir", tmp_path).exit_code == 0
    assert (folder / "mine.svg").read_text() == "<svg/>" and (folder / "compare_ntf.svg").exists()
    assert not stale.exists() and not Path(str(stale) + ".json").exists()


# -- real browser ----------------------------------------------------------------------------------
def _chromium() -> str | None:
    wait_for_services()
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var boxes = imgs.map(function (i) {
    var r = i.getBoundingClientRect();
    return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height].map(Math.round)
      .join(' ');
  });
  var caps = Array.from(document.querySelectorAll('figcaption')).map(function (c) {
    return c.textContent.replace(/[|;]/g, ' ');
  });
  var out = document.createElement('pre');
  out.id = 'nd-check';
  out.textContent = 'images=' + imgs.length + ';broken=' + broken.length +
    ';open_params=' + Array.from(document.querySelectorAll('details[open] > summary'))
      .filter(function (x) { return x.textContent.indexOf('parameters') === 0; }).length +
    ';boxes=' + boxes.join('|') + ';captions=' + caps.join('|') +
    ';sections=' + Array.from(document.querySelectorAll('section')).map(function (s) {
      return s.id + ':' + (s.getBoundingClientRect().height > 50 ? 'visible' : 'hidden');
    }).join(',');
  document.body.appendChild(out);
});
</script>"""
WINDOW = (1400, 6000)  # CSS px; device scale 1, so screenshot pixels = CSS px


@pytest.mark.browser
def test_report_renders_in_headless_chromium(run, tmp_path):
    """The report as a browser shows it: every figure decoded and captioned in words, the
    parameters collapsed, and the figures inside the screenshot actually drawn (not white)."""
    exe = _chromium()
    if exe is None:
        msg = "headless Chromium absent (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI must have it")
        pytest.skip(msg)
    # The report itself has no script; a copy with a checker appended reports what the browser
    # decoded and where it laid each image out (the checker adds nothing above them).
    probe = tmp_path / "probe.html"
    probe.write_text((run / "report.html").read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--disable-dev-shm-usage", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}",
            "--force-device-scale-factor=1", f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--virtual-time-budget=2000"]
    dom = subprocess.run(base + ["--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    line = html.unescape(dom.stdout.split('id="nd-check">', 1)[1].split("</pre>", 1)[0])
    check = dict(part.split("=", 1) for part in line.split(";"))
    n_img = int(check["images"])
    assert n_img >= 6 and check["broken"] == "0", line[:500]
    assert check["open_params"] == "0"  # parameters are collapsed
    shown = dict(s.split(":") for s in check["sections"].split(","))
    assert list(shown) == SECTIONS and set(shown.values()) == {"visible"}, shown
    captions = check["captions"].split("|")
    assert len(captions) == n_img
    for i, cap in enumerate(captions, 1):  # numbered, in words, naming the data file
        assert cap.startswith(f"Figure {i}. ") and len(cap) > 120 and "Data: " in cap, cap
    assert any("Communities of NTF component" in c for c in captions)
    # screenshot of the unmodified report: each figure laid out inside it holds a drawing
    shot = tmp_path / "report_screenshot.png"
    r = subprocess.run(base + [f"--screenshot={shot}", (run / "report.html").as_uri()],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    img = imread(shot)[..., :3]
    assert img.shape[:2] == (WINDOW[1], WINDOW[0])
    ink = np.any(img < 0.9, axis=-1)  # not white / near-white
    assert 0.05 < ink.mean() < 0.9  # the page is neither blank nor one flat colour
    inside = 0
    for box in check["boxes"].split("|"):
        x, y, w, h = (int(v) for v in box.split())
        if y + h > WINDOW[1] or w < 100:
            continue
        inside += 1
        region = ink[y:y + h, x:x + w]
        assert 0.03 < region.mean() < 0.95, (box, region.mean())  # drawn, not blank or solid
        assert np.unique(rgb_codes(img[y:y + h, x:x + w])).size > 20  # lines, colours, text
    assert inside >= 3
    if os.environ.get("NEURODYN_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["NEURODYN_KEEP_SCREENSHOT"])


# -- on outputs of the real stages ------------------------------------------------------------------
@pytest.mark.slow
def test_report_and_compare_on_real_stage_outputs(tmp_path):
    """simulate -> affinity -> factorize (the stages' own run functions) -> compare -> report.

    The simulated groups co-activate and the connectome is planted dense within the same
    groups, so the NTF component matrices must score well above chance against it.
    """
    from neurodyn.affinity import stage as aff
    from neurodyn.analysis.compare import read_scores
    from neurodyn.community import stage as comm
    from neurodyn.hmmglm import stage as hmm
    from neurodyn.io.store import write_recordings
    from neurodyn.report.synthetic import planted_connectome
    from neurodyn.simulate import simulate_calcium
    from neurodyn.tensor import stage as ntf

    recs, truth = simulate_calcium(n_animals=3, n_neurons=24, n_frames=600, fs=4.0, n_groups=3,
                                   seed=0)
    labels = [str(x) for x in truth["labels"]]
    con = planted_connectome(labels, np.asarray(truth["membership"]), seed=1)
    write_recordings(tmp_path / "recordings.h5", recs, [con], seed=0)
    aff.run(tmp_path / "recordings.h5", tmp_path / "affinity.h5")
    ntf.run(tmp_path / "affinity.h5", tmp_path / "ntf.h5", rank=3, restarts=2)
    comm.run(tmp_path / "ntf.h5", tmp_path / "communities.h5", seed=0)
    hmm.run(tmp_path / "recordings.h5", tmp_path / "states.h5", seed=0, states="3",
            restarts=1, max_iter=20, prior="onehot")
    expected = ["stage-recordings", "stage-affinity", "stage-ntf", "stage-communities",
                "stage-states"]
    out = compare_connectome(tmp_path, "planted", n_perm=100, seed=0)
    rows = {r["source"]: r for r in read_scores(out)}
    assert set(rows) == {"ntf", "communities"} | {f"hmmglm:sim/animal{a}" for a in range(3)}
    assert rows["ntf"]["n_neurons"] == 24
    assert rows["ntf"]["roc_auc"] > 0.7 and rows["ntf"]["p_roc"] < 0.02
    page = _parse(build_report(tmp_path).read_text())
    assert page.sections == [*expected, "timeline", "stage-compare"]
    # one timeline per recording
    assert len(list((tmp_path / "figures" / "timeline").glob("*.png"))) == 3
    for src in page.imgs:
        _decode_image(src)


def test_pipeline_run_directory_with_units(tmp_path, cli, only_own_figures):
    for i, unit in enumerate(("wormA", "wormB")):
        make_run(tmp_path / unit, seed=i)
    (tmp_path / ".neurodyn").mkdir()
    r = cli("compare-connectome", tmp_path, "--connectome", "planted", "--n-perm", "20")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "wormA" / "compare.h5").exists() and (tmp_path / "wormB" / "compare.h5").exists()
    r = cli("report", tmp_path)
    assert r.exit_code == 0, r.output
    page = _parse((tmp_path / "report.html").read_text())
    assert page.sections == [f"{u}-{s}" for u in ("wormA", "wormB") for s in SECTIONS]
    assert (tmp_path / "wormB" / "figures" / "timeline" / "timeline_sim_animal1.png").exists()


def test_match_labels_relabels_to_reference():
    from neurodyn.analysis.timeline import match_labels

    ref = np.array([0, 0, 1, 1, 2, 2, 2])
    other = np.array([5, 5, 3, 3, 4, 4, 9])
    m = match_labels(ref, other)
    assert m[5] == 0 and m[3] == 1 and m[4] == 2 and m[9] == 3


def test_unknown_stage_gets_a_section_with_a_note(tmp_path, only_own_figures):
    from neurodyn.io.store import atomic_h5, put

    with atomic_h5(tmp_path / "mystery.h5", stage="mystery", params={"alpha": 0.5}, seed=3) as f:
        put(f, "score", np.array([0.75]))
        f.attrs["n_things"] = 4
        f.create_group("g").attrs["quality"] = 0.9
    page = _parse(build_report(tmp_path).read_text())
    assert page.sections == ["stage-mystery"]
    text = " ".join(page.text)
    assert "n_things" in text and "0.75" in text and "quality" in text and "alpha" in text
    assert "skipped in this test" in text  # the figure-module note
