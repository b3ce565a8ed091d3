"""The data layer: one schema, and readers / writers for the published formats."""
