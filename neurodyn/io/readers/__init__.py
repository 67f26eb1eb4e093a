"""Built-in readers; importing this package registers them all."""

from neurodyn.io.readers import celegans, connectome  # noqa: F401
from neurodyn.io.readers import celegans_collection, celegans_sources  # noqa: F401
from neurodyn.io.readers import native  # noqa: F401
from neurodyn.io.readers import eeg, spikes  # noqa: F401
