"""services/occasions: occasions, events and guests over HTTP."""
