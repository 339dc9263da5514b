"""Datasets: the registry (``suite.data.registry``), readers for the real formats
(``suite.data.readers``), the embedded-data generators (``suite.data.generate``) and
build / verify / add with DVC (``suite.data.manage``).

>>> from suite.data import locate, version
>>> locate("mini-flow")        # doctest: +SKIP
"""
from .registry import DATASETS, Dataset, DatasetMissing, data_roots, get, locate, register, status, version

__all__ = ["DATASETS", "Dataset", "DatasetMissing", "data_roots", "get", "locate", "register", "status", "version"]
