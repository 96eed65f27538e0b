"""MLPerf Inference Edge results: round manifest, LoadGen log parsing, priors."""
