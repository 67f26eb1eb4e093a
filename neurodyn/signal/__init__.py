"""Signal processing below the stages: :mod:`kernels` (pure array functions) and
:mod:`recordings` (operations on :class:`~neurodyn.recording.Recording` objects shared by
ingest, preprocess, the readers and affinity)."""
