"""Serialisers: a fragment's JSON-LD dict → bytes per media type."""
