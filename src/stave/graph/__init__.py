"""The music graph: a projection of the log into nodes, credits and governance state."""
