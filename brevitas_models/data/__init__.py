"""Data sets: the synthetic set generated in code, and loaders for data a user has on disk."""
