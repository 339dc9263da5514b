"""LSM: Learning Subspace Minimization for Low-level Vision (Tang & Tan, CVPR 2020)."""
