"""neurodyn: raw neural recordings to interpretable dynamics."""

__version__ = "0.1.0"
