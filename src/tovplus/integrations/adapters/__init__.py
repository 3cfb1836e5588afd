"""Adapters that ship with TOV Plus. Each is one module; see ``docs/writing-an-adapter.md``."""
