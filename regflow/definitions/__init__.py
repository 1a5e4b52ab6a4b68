"""What a flow is made of: the definition model, loading, lint, the registry of guards and actions,
the library of versions."""
