"""Real data: readers into a pool, text encoders and embeddings, and the export of collected pairs."""
