"""Prefect flows: thin wiring with typed pydantic parameters (the Prefect UI's forms), one file per flow."""
