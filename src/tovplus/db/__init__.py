"""Tables, sessions and migrations. Knows nothing about HTTP."""
