"""Front ends: they render the neutral screen model and call the engine, nothing more."""
