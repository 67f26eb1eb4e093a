"""Stage 1 of the dynamic functional connectome: windowed pairwise affinities between neurons."""
