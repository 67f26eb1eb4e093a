"""Analysis across stage outputs of a run directory (no rendering): :mod:`timeline` aligns
HMM-GLM states, bi-clustering states and NTF factors and scores their agreement;
:mod:`compare` scores inferred interactions against an anatomical connectome;
:mod:`rundir` finds the stage files."""
