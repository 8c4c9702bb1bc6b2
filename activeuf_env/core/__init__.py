"""What one episode needs: the response pool, the synthetic pool, judges, the ensemble reward model and the
downstream evaluator."""
