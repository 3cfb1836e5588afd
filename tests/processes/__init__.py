"""Tests that spawn real processes (tovplus serve, worker, api and the CLI) and kill them."""
