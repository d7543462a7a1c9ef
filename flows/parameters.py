"""Field types the flows' parameter models share (pydantic). They live here, not in `storage/`, because `storage/`
and `models/` import on the GPU machine, whose Python has no pydantic (`benchmarks/gpu_check.sh --preflight`)."""
from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator

from storage.location import normalise

# A data root or a store: a local path (made absolute) or an fsspec URL, kept as text so a Prefect parameter form and
# its JSON hold it as typed (a `Path` field would turn s3://b/p into s3:/b/p). A URL with credentials is refused.
Location = Annotated[str, BeforeValidator(normalise)]
