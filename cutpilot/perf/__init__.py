"""Ad performance: platform exports → one canonical daily table, credit, ranking and insight."""
