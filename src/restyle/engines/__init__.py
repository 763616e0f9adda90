"""Restyle's engines. Each has a config dataclass and an engine class holding its networks."""
