"""Built-in readers; importing this package registers them all."""

from neurodyn.io.readers import (  # noqa: F401
    celegans,
    celegans_collection,
    celegans_sources,
    connectome,
    counts,
    eeg,
    native,
    phy,
    spikes,
)
