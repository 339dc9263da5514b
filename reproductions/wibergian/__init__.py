"""Fixing Implicit Derivatives: Trust-Region Based Learning of Continuous Energy Functions
(Toso, Campbell & Russell, NeurIPS 2019): Fig. 2, Tables 1 and 2."""
from . import fig2, table1, table2  # noqa: F401  (register wibergian.fig2, .table1, .table2)
