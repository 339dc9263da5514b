"""Beyond Gradient Descent for Regularized Segmentation Losses (Marin et al., CVPR 2019).

Registers ``adm.table1``, ``adm.table2``, ``adm.table3``, ``adm.fig3``, ``adm.fig6`` and
``adm.shallow`` and ``adm.fig1``. The networks, the two-phase training and its model cache are in
:mod:`.training`; the losses on network outputs in :mod:`.losses`; data through the registry in
:mod:`.data`; shared profile settings in :mod:`.settings`; the shallow models as leaderboard methods
in :mod:`.methods`.
"""
from . import experiments, fig1, methods, shallow  # noqa: F401  (register the experiments and methods)
