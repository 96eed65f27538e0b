"""E3-Agent: the Online Performance Model, the control surface, triggers and meta-controllers."""
