"""Loaded at start-up by every Python process of the GPU preflight, DataLoader workers included (it is on their
PYTHONPATH, `benchmarks/gpu_carry.py`): refuses the packages the GPU machine lacks and nobody carries."""
import os
import sys

if os.environ.get("TALKFACE_GPU_WHEELS"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import gpu_carry

    sys.path.pop(0)
    gpu_carry.block_missing(os.environ["TALKFACE_GPU_WHEELS"])
