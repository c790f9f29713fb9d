"""Evaluation: put fitted models side by side (LOO, held-out scores) and compare posteriors."""
