"""The CIFAR-10-C corruptions (suite.data.corruptions): contracts, severity ordering, worked values.

Worked values are computed by hand from Hendrycks & Dietterich's definitions (make_cifar_c.py):
brightness adds c to V of HSV, which for a colour (r, g, b) with max channel m scales every
channel by (m/255 + c) / (m/255); contrast maps x to (x - mean) c + mean per channel; the result
is truncated to uint8 as the original's ``np.uint8`` does.
"""
import numpy as np
import pytest

from suite.data import compose, corruptions

DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression"}
# Corruptions whose parameters grow with severity in every component, so the distortion must too.
MONOTONE = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "zoom_blur", "snow", "fog",
            "brightness", "contrast", "pixelate", "jpeg_compression")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    sources = ("skimage:astronaut", "skimage:chelsea", "skimage:coffee", "skimage:rocket", "sklearn:china.jpg",
               "skimage:brick")
    return np.stack([np.clip(np.round(compose.texture(s, 32, 32, rng)), 0, 255).astype(np.uint8) for s in sources])


def distortion(images, name, severity):
    out = corruptions.corrupt_batch(images, name, severity, seed=0)
    return float(np.abs(out.astype(np.float64) - images).mean())


@pytest.mark.parametrize("name", corruptions.CORRUPTIONS)
def test_shape_dtype_and_determinism(images, name):
    for severity in (1, 5):
        first = corruptions.corrupt(images[0], name, severity, rng=np.random.default_rng(7))
        again = corruptions.corrupt(images[0], name, severity, rng=np.random.default_rng(7))
        assert first.shape == (32, 32, 3) and first.dtype == np.uint8
        np.testing.assert_array_equal(first, again)
        if name not in DETERMINISTIC:
            other = corruptions.corrupt(images[0], name, severity, rng=np.random.default_rng(8))
            assert not np.array_equal(first, other), f"{name} ignores its random source"
    # every corruption changes the image at the top severity
    assert distortion(images, name, 5) > 0.5


@pytest.mark.parametrize("name", MONOTONE)
def test_distortion_grows_with_severity(images, name):
    values = [distortion(images, name, s) for s in corruptions.SEVERITIES]
    assert all(b > a for a, b in zip(values, values[1:])), f"{name}: {values}"


def test_non_monotone_definitions_grow_where_their_parameters_do(images):
    # glass blur: severities 2 -> 4 and 3 -> 5 keep sigma and double the shuffling passes
    assert distortion(images, "glass_blur", 4) > distortion(images, "glass_blur", 2)
    assert distortion(images, "glass_blur", 5) > distortion(images, "glass_blur", 3)
    # motion blur: sigma 1 -> 1.5 -> 2 at radius 6
    motion = [distortion(images, "motion_blur", s) for s in (1, 2, 3)]
    assert motion[0] < motion[1] < motion[2]
    # frost: weight of the frost layer 0.2 -> 0.3 at image weight 1
    assert distortion(images, "frost", 2) > distortion(images, "frost", 1)


def test_brightness_worked_value():
    image = np.zeros((8, 8, 3), np.uint8)
    image[...] = (200, 100, 50)
    out = corruptions.corrupt(image, "brightness", 1, rng=np.random.default_rng(0))
    # V = 200/255 -> 200/255 + 0.05; every channel scaled by 1.06375: 212.75, 106.375, 53.19
    np.testing.assert_array_equal(out[0, 0], [212, 106, 53])
    out = corruptions.corrupt(image, "brightness", 5, rng=np.random.default_rng(0))
    # V clipped at 1: scale 255/200: 255, 127.5, 63.75
    np.testing.assert_array_equal(out[0, 0], [255, 127, 63])
    grey = np.full((8, 8, 3), 100, np.uint8)
    # grey: S = 0, V 100/255 + 0.1 -> 125.5
    np.testing.assert_array_equal(corruptions.corrupt(grey, "brightness", 2, rng=np.random.default_rng(0)), 125)


def test_contrast_worked_value():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, 4:] = 201  # channel means 100.5
    out = corruptions.corrupt(image, "contrast", 2, rng=np.random.default_rng(0))  # c = 0.5
    np.testing.assert_array_equal(out[:, :4], 50)  # (0 - 100.5) 0.5 + 100.5 = 50.25
    np.testing.assert_array_equal(out[:, 4:], 150)  # (201 - 100.5) 0.5 + 100.5 = 150.75
    out = corruptions.corrupt(image, "contrast", 5, rng=np.random.default_rng(0))  # c = 0.15
    np.testing.assert_array_equal(out[:, :4], 85)  # 85.425
    np.testing.assert_array_equal(out[:, 4:], 115)  # 115.575


def test_gaussian_noise_has_the_published_std():
    image = np.full((64, 64, 3), 128, np.uint8)
    out = corruptions.corrupt(image, "gaussian_noise", 3, rng=np.random.default_rng(1))
    std = (out.astype(np.float64) - 128).std() / 255
    assert abs(std - 0.08) < 0.004  # severity 3: sigma 0.08 on [0, 1]


def test_impulse_noise_replaces_the_published_fraction():
    image = np.full((64, 64, 3), 128, np.uint8)
    out = corruptions.corrupt(image, "impulse_noise", 5, rng=np.random.default_rng(1))
    changed = (out != 128).mean()
    assert abs(changed - 0.07) < 0.01 and set(np.unique(out)) == {0, 128, 255}


def test_motion_blur_kernel_follows_imagemagick():
    weights, offsets = corruptions.motion_blur_kernel(6, 2.0, 0.0)
    assert len(weights) == 13 and abs(weights.sum() - 1) < 1e-12
    assert np.all(np.diff(weights) < 0)  # one-sided Gaussian
    np.testing.assert_array_equal(offsets[:, 0], np.arange(13))
    np.testing.assert_array_equal(offsets[:, 1], 0)
    _, offsets = corruptions.motion_blur_kernel(2, 1.0, 90.0)
    np.testing.assert_array_equal(offsets, [[0, 0], [0, 1], [0, 2], [0, 3], [0, 4]])


def test_plasma_fractal_and_frost_texture():
    field = corruptions.plasma_fractal(32, 3.0, np.random.default_rng(0))
    assert field.shape == (32, 32) and field.min() == 0 and field.max() == 1
    with pytest.raises(ValueError, match="power of two"):
        corruptions.plasma_fractal(30, 3.0, np.random.default_rng(0))
    texture = corruptions.frost_texture(0)
    assert texture.shape == (200, 200, 3) and texture.dtype == np.uint8
    np.testing.assert_array_equal(texture, corruptions.frost_texture(0))
    assert texture[..., 2].mean() > texture[..., 0].mean()  # bluish


def test_bad_input_is_named():
    image = np.zeros((32, 32, 3), np.uint8)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="corruption"):
        corruptions.corrupt(image, "rain", 1, rng=rng)
    with pytest.raises(ValueError, match="severity"):
        corruptions.corrupt(image, "fog", 6, rng=rng)
    with pytest.raises(ValueError, match="uint8"):
        corruptions.corrupt(image.astype(np.float32), "fog", 1, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        corruptions.corrupt(image, "fog", 1, rng=0)
