"""The method registry: explicit names per task, clear errors, a code hash per method."""
from __future__ import annotations

import pytest

from suite.harness import methods
from suite.harness.registry import UnknownIdError


def test_register_look_up_and_order():
    @methods.method("zz-test-identity", task="denoising", kind="user", settings="none")
    def identity(noisy, *, sigma):
        return noisy

    try:
        found = methods.get_method("denoising", "zz-test-identity")
        assert found.func is identity and found.kind == "user" and found.settings == "none"
        names = [m.name for m in methods.methods_for("denoising")]
        assert "zz-test-identity" in names
        kinds = [m.kind for m in methods.methods_for("denoising")]
        assert kinds == sorted(kinds, key=["paper", "classical", "user"].index)
        with pytest.raises(UnknownIdError, match="did you mean 'zz-test-identity'"):
            methods.get_method("denoising", "zz-test-identiy")
    finally:
        methods._METHODS.pop(("denoising", "zz-test-identity"))


def test_bad_registrations_name_the_problem():
    with pytest.raises(ValueError, match="task: expected one of"):
        methods.method("x", task="segmentation")
    with pytest.raises(ValueError, match="kind: expected"):
        methods.method("x", task="flow", kind="mine")
    with pytest.raises(ValueError, match="without '/'"):
        methods.method("a/b", task="flow")

    @methods.method("zz-clash", task="flow")
    def first(image1, image2):
        return None

    try:
        def second(image1, image2):
            return None

        with pytest.raises(ValueError, match="already registered by .*first"):
            methods.method("zz-clash", task="flow")(second)
        methods.method("zz-clash", task="flow")(first)  # the same function again is not a clash
    finally:
        methods._METHODS.pop(("flow", "zz-clash"))


def test_code_hash_follows_the_code():
    @methods.method("zz-code-a", task="edges")
    def a(image):
        return image

    try:
        code = methods.get_method("edges", "zz-code-a").code
        assert len(code) == 16 and code == methods.get_method("edges", "zz-code-a").code
        # a method in another module hashes differently
        import suite.leaderboards.segmentation  # noqa: F401  (registers opencv-grabcut)

        assert methods.get_method("interactive-segmentation", "opencv-grabcut").code != code
    finally:
        methods._METHODS.pop(("edges", "zz-code-a"))
