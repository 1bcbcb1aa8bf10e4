"""One BLAS thread per process, set before numpy loads (numpy reads it once, then).

An ask multiplies one question's vector by the index's matrices: work too small for
OpenBLAS's threads to pay for waking them, and a server runs asks side by side, in
threads and in command processes (which inherit this environment), each of which
would otherwise start a BLAS thread per core and fight the others for them (and
the serving process's acks, which have a deadline). The operator's own settings,
when there are any, win.
"""

from __future__ import annotations

import os

BLAS_THREADS = "OPENBLAS_NUM_THREADS"
ONE_THREAD = {BLAS_THREADS: "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

for _name, _value in ONE_THREAD.items():
    os.environ.setdefault(_name, _value)
