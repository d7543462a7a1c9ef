"""Thin Prefect @task wrappers around the pure steps in tasks/ and storage/ (the only Prefect imports below
flows/). They pass references — paths, clip records, digests — never arrays."""
