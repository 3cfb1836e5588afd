"""Helpers shared by the test folders (tests/factories.py makes users, occasions and connections)."""
