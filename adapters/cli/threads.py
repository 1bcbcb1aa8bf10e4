"""One OpenBLAS thread per process, set before numpy loads (numpy reads it once, then).

An ask multiplies one question's vector by the index's matrices: work too small for
OpenBLAS's threads to pay for waking them, and a server runs asks side by side, in
threads and in worker processes (which inherit this environment), each of which
would otherwise start a BLAS thread per core and fight the others for them. The
operator's own setting, when there is one, wins.
"""

from __future__ import annotations

import os

BLAS_THREADS = "OPENBLAS_NUM_THREADS"

os.environ.setdefault(BLAS_THREADS, "1")
