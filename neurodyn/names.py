"""Canonical C. elegans neuron names and the resolution of ambiguous labels.

The Homogenized C. elegans collection (Simeon et al. 2024) indexes every worm by 300
canonical hermaphrodite neuron slots, sorted alphabetically (Python string order, so
``AS1 < AS10 < AS11 < AS2``). The list here is the 302 hermaphrodite neurons minus the two
canal-associated neurons CANL/CANR, which make no synapses. It is derived from data, not typed
from memory: the 279 somatic neurons of Varshney et al. (2011, ``ConnOrdered_040903.mat``),
plus VC6 (absent there for lack of synapses but present in White et al. 1986), plus the 20
pharyngeal neurons. Together these are exactly the 299 neurons named in
``white_1986_whole.json`` plus VC6; ``tests/io/test_connectome_io.py`` checks both files against it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

_PADDED = re.compile(r"^([A-Z]{2,3})0+(\d+)$")

_CANONICAL_TEXT = """
ADAL ADAR ADEL ADER ADFL ADFR ADLL ADLR AFDL AFDR AIAL AIAR AIBL AIBR AIML AIMR AINL AINR AIYL
AIYR AIZL AIZR ALA ALML ALMR ALNL ALNR AQR AS1 AS10 AS11 AS2 AS3 AS4 AS5 AS6 AS7 AS8 AS9 ASEL
ASER ASGL ASGR ASHL ASHR ASIL ASIR ASJL ASJR ASKL ASKR AUAL AUAR AVAL AVAR AVBL AVBR AVDL AVDR
AVEL AVER AVFL AVFR AVG AVHL AVHR AVJL AVJR AVKL AVKR AVL AVM AWAL AWAR AWBL AWBR AWCL AWCR
BAGL BAGR BDUL BDUR CEPDL CEPDR CEPVL CEPVR DA1 DA2 DA3 DA4 DA5 DA6 DA7 DA8 DA9 DB1 DB2 DB3 DB4
DB5 DB6 DB7 DD1 DD2 DD3 DD4 DD5 DD6 DVA DVB DVC FLPL FLPR HSNL HSNR I1L I1R I2L I2R I3 I4 I5 I6
IL1DL IL1DR IL1L IL1R IL1VL IL1VR IL2DL IL2DR IL2L IL2R IL2VL IL2VR LUAL LUAR M1 M2L M2R M3L
M3R M4 M5 MCL MCR MI NSML NSMR OLLL OLLR OLQDL OLQDR OLQVL OLQVR PDA PDB PDEL PDER PHAL PHAR
PHBL PHBR PHCL PHCR PLML PLMR PLNL PLNR PQR PVCL PVCR PVDL PVDR PVM PVNL PVNR PVPL PVPR PVQL
PVQR PVR PVT PVWL PVWR RIAL RIAR RIBL RIBR RICL RICR RID RIFL RIFR RIGL RIGR RIH RIML RIMR RIPL
RIPR RIR RIS RIVL RIVR RMDDL RMDDR RMDL RMDR RMDVL RMDVR RMED RMEL RMER RMEV RMFL RMFR RMGL
RMGR RMHL RMHR SAADL SAADR SAAVL SAAVR SABD SABVL SABVR SDQL SDQR SIADL SIADR SIAVL SIAVR SIBDL
SIBDR SIBVL SIBVR SMBDL SMBDR SMBVL SMBVR SMDDL SMDDR SMDVL SMDVR URADL URADR URAVL URAVR URBL
URBR URXL URXR URYDL URYDR URYVL URYVR VA1 VA10 VA11 VA12 VA2 VA3 VA4 VA5 VA6 VA7 VA8 VA9 VB1
VB10 VB11 VB2 VB3 VB4 VB5 VB6 VB7 VB8 VB9 VC1 VC2 VC3 VC4 VC5 VC6 VD1 VD10 VD11 VD12 VD13 VD2
VD3 VD4 VD5 VD6 VD7 VD8 VD9
"""

#: The 300 canonical hermaphrodite neurons in the collection's slot order (alphabetical).
CANONICAL_NEURONS: tuple[str, ...] = tuple(sorted(_CANONICAL_TEXT.split()))
#: Slot index of each canonical neuron (0..299).
CANONICAL_SLOT: dict[str, int] = {x: i for i, x in enumerate(CANONICAL_NEURONS)}
#: Neurons of the 302 that are not canonical slots (no synapses; see module docstring).
NON_SLOT_NEURONS: tuple[str, ...] = ("CANL", "CANR")


def canonical_neuron_name(name: str) -> str:
    """Normalise a C. elegans neuron name to the collection's canonical spelling.

    Strips whitespace, upper-cases, and drops zero padding of motor-neuron numbers
    (``"DA06"`` -> ``"DA6"``, ``"VB02"`` -> ``"VB2"``); other names pass unchanged.
    """
    s = str(name).strip().upper()
    m = _PADDED.match(s)
    return f"{m.group(1)}{int(m.group(2))}" if m else s


def is_canonical(name: str) -> bool:
    """True when ``name`` (after :func:`canonical_neuron_name`) is one of the 300 slots."""
    return canonical_neuron_name(name) in CANONICAL_SLOT


def resolve_ambiguous(label: str, used: Collection[str] = ()) -> str | None:
    """Resolve an L/R- or D/V-ambiguous label to the nearest unused canonical name.

    Each ``?`` stands for one unknown character (``"SMB??"`` -> ``SMBDL``, ``SMBDR``, ``SMBVL``
    or ``SMBVR``; ``"IL2?"`` -> ``IL2L``/``IL2R``). Rules, in order:

    1. Canonical names of the same length matching the pattern, not in ``used``; the first
       alphabetically wins (so a second ``SMB??`` gets the next free one).
    2. Failing that, canonical names that extend the pattern (``"RMD?"`` may become ``RMDDL``),
       shortest then alphabetical.
    3. Otherwise ``None``: the caller keeps the ROI as unlabelled.

    A label without ``?`` that is canonical is returned as is when unused.
    """
    s = canonical_neuron_name(label)
    if "?" not in s:
        return s if s in CANONICAL_SLOT and s not in used else None
    body = re.escape(s).replace(r"\?", "[A-Z0-9]")
    exact = re.compile(f"^{body}$")
    hits = [x for x in CANONICAL_NEURONS if exact.match(x) and x not in used]
    if hits:
        return hits[0]
    longer = re.compile(f"^{body}")
    hits = [x for x in CANONICAL_NEURONS if longer.match(x) and x not in used]
    return min(hits, key=lambda x: (len(x), x)) if hits else None


def assign_labels(raw: Iterable[object], *, bilateral_suffix: bool = False) -> list[str | None]:
    """Map per-ROI source labels to unique canonical names (``None`` = unlabelled).

    The first ROI claiming a name gets it; later duplicates become unlabelled, as the
    collection's preprocessors do. Empty, numeric or unknown labels are unlabelled; labels with
    ``?`` are resolved by :func:`resolve_ambiguous` against names already taken.

    Parameters
    ----------
    raw : iterable of str or None
        One label per ROI, in column order.
    bilateral_suffix : bool
        Also try ``label + "L"`` then ``label + "R"`` for class names (Leifer2023 writes
        ``"AVA"`` for an unsided AVA neuron).
    """
    labels = [None if x is None else str(x).strip() for x in raw]
    used: set[str] = set()
    out: list[str | None] = [None] * len(labels)
    # exact canonical names first so that an ambiguous label never steals a stated one
    for i, lab in enumerate(labels):
        if lab and "?" not in lab:
            name = canonical_neuron_name(lab)
            if name in CANONICAL_SLOT and name not in used:
                out[i] = name
                used.add(name)
    for i, lab in enumerate(labels):
        if out[i] is not None or not lab or lab.isdigit():
            continue
        name = canonical_neuron_name(lab)
        if "?" in name:
            res = resolve_ambiguous(name, used)
        elif bilateral_suffix and name not in CANONICAL_SLOT:
            res = next(
                (x for x in (name + "L", name + "R") if x in CANONICAL_SLOT and x not in used), None
            )
        else:
            res = None
        if res is not None:
            out[i] = res
            used.add(res)
    return out
