"""The float32 GEMM ceiling: the best GFLOP/s NumPy's BLAS reaches on a large square product.

Run in its own process with the thread count fixed by the environment (the driver sets
OPENBLAS_NUM_THREADS etc.), so the ceiling is measured under the same conditions as the workers:

    python -m bench.gemm --threads 2 [--n 2048] [--reps 5]

prints one JSON object: {"threads", "n", "gflops", "blas"}. A product of two n x n matrices costs
2*n^3 FLOPs; the ceiling is the best of ``reps`` timed products (the machine is shared, the best
repetition is the least disturbed one).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from threadpoolctl import threadpool_info


def blas_info() -> list[dict]:
    """The BLAS libraries loaded in this process: library, version, kernel (architecture), threads."""
    return [
        {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
        for lib in threadpool_info()
        if lib["user_api"] == "blas"
    ]


def gemm_gflops(n: int, reps: int) -> float:
    """Best GFLOP/s over ``reps`` products C = A @ B of float32 (n, n) matrices (2*n^3 FLOPs each)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n), dtype=np.float32)
    B = rng.standard_normal((n, n), dtype=np.float32)
    C = np.empty((n, n), dtype=np.float32)
    np.matmul(A, B, out=C)  # warm-up: page in, start the BLAS threads
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        np.matmul(A, B, out=C)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, required=True, help="thread count the environment was set to")
    parser.add_argument("--n", type=int, default=2048, help="matrix size")
    parser.add_argument("--reps", type=int, default=5, help="timed products; the best counts")
    args = parser.parse_args()
    result = {"threads": args.threads, "n": args.n, "gflops": gemm_gflops(args.n, args.reps), "blas": blas_info()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
