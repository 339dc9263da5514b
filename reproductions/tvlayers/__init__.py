"""Total Variation Optimization Layers for Computer Vision (Yeh et al., CVPR 2022)."""
from . import table1  # noqa: F401  (registers tvlayers.table1)
from . import table6  # noqa: F401  (registers tvlayers.table6)
from . import table4  # noqa: F401  (registers tvlayers.table4)
from . import table5  # noqa: F401  (registers tvlayers.table5)
from . import table2  # noqa: F401  (registers tvlayers.table2)
from . import table3  # noqa: F401  (registers tvlayers.table3)
