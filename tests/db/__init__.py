"""db/: migrations against the models, SQL helpers, statement shapes."""
