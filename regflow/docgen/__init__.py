"""The generated documentation: flow pages, the API reference, setting notes (`python -m
regflow.docgen DIR`)."""
