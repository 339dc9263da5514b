"""LSM: Learning Subspace Minimization for Low-level Vision (Tang & Tan, CVPR 2020).

Registers ``lsm.interactive`` (Fig. 5), ``lsm.video`` (Fig. 6), ``lsm.stereo`` (Fig. 7),
``lsm.flow`` (Fig. 8), ``lsm.efficiency`` (App. B), ``lsm.zero_shot`` (Figs. 9-11, 15),
``lsm.ablations`` (Fig. 12), ``lsm.subspaces`` (Fig. 13) and ``lsm.learning_curve`` (test error vs
training steps beside the baselines, not in the paper), and the joint model as the
leaderboard method ``lsm-joint``. The method: data terms in :mod:`.terms`, the network in
:mod:`.model`, losses in :mod:`.losses`, the trainer in :mod:`.training`; models cached by
content in :mod:`.trained`; data in :mod:`.data`; profiles in :mod:`.settings`; scoring in
:mod:`.evaluation`; figures in :mod:`.plots`.
"""
from . import experiments, learning_curve, methods  # noqa: F401  (register the experiments and methods)
