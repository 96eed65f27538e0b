"""From simulation outputs to the paper's tables, figures and numbers (issue 5)."""
