"""TOV Plus integrations framework."""

__version__ = "0.1.0"
