"""The composed app as a whole: service routes and the error envelope, OpenAPI fuzzing, settings."""
