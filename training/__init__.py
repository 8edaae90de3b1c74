"""Training, synthetic CCTV queries, evaluation and export for the cratewatch embedder."""
