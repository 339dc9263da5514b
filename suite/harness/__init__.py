"""The harness: experiment registry, runner and cache, result store, provenance, claims."""
from .context import Context
from .records import Record
from .registry import Experiment, experiment

__all__ = ["Context", "Experiment", "Record", "experiment"]
