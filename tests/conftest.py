import os

# Two xdist workers share two cores: one BLAS/OpenMP thread each (and in the subprocesses the tests
# start) avoids oversubscription, where a spinning BLAS pool can slow a step down a hundredfold.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

try:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
except ImportError:  # pragma: no cover - threadpoolctl comes with the test extra
    pass


@pytest.fixture
def rng():
    return np.random.default_rng(0)
