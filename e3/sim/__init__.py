"""The discrete-event simulator of the base-station edge server (paper sections 2 and 4.1)."""
