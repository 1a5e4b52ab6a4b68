"""The rules the built-in flows share: codes, what people type (validation)."""
