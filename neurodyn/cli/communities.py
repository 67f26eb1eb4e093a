"""Commands of this stage (registered on import)."""
