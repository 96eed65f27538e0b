"""JSON schemas shipped with e3 (config, scenarios, priors records)."""
