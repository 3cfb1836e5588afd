"""services/connections (and health): lifecycle routes, racing patches, drift, the admin views."""
