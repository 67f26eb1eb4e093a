"""Stage 2 of the dynamic functional connectome: non-negative tensor factorization."""
