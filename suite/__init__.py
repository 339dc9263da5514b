"""energybench: the harness, data layer, solvers, leaderboards and report shared by the four papers."""
import os

# Why: torch's OpenMP workers spin while they wait for work. When anything else holds a core (a
# second run, a test, a browser), a 2-thread team then spends most of its time waiting on a
# descheduled partner: on this project's 2-core machine, with one other busy process, a training
# step of the TV Table 2 classifier took 1152 ms at 2 threads with the default policy, 52 ms with
# PASSIVE and 17 ms at 1 thread (`energybench bench tv --sections train`, 2026-12-03). libgomp
# reads the variable once, when torch loads it, so this must run before the first `import torch`;
# an explicit setting of the user's is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
