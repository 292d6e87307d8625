"""Pictures as model inputs: read, made grey, cropped to the ink, fitted and resampled."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as onp
import pytest

from minifw import images
from minifw.datasets import load_digits


def test_area_resize_averages_what_each_output_pixel_covers() -> None:
    a = onp.random.default_rng(0).random((12, 9))
    onp.testing.assert_allclose(images.area_resize(a, 4, 3),
                                a.reshape(4, 3, 3, 3).mean(axis=(1, 3)), rtol=1e-12)
    b = images.area_resize(a, 5, 7)  # not a whole factor: the mean is kept all the same
    assert b.shape == (5, 7) and b.mean() == pytest.approx(a.mean(), rel=1e-12)


def test_a_digit_drawn_large_comes_back_as_the_8x8_digit() -> None:
    _, (x, _) = load_digits()
    same = 0
    for row in x[:100]:
        digit = row.reshape(8, 8)
        large = onp.kron(1.0 - digit, onp.ones((10, 10)))  # dark ink on white, 80x80
        back = images.digit_input(onp.pad(large, 15, constant_values=1.0), (8, 8), (8, 8))
        # the digits fill their height and sit in the middle: a centred digit comes back
        cols = onp.flatnonzero(digit.max(axis=0) > images.INK * digit.max())
        centred = cols[0] + cols[-1] == 7
        if centred:
            same += onp.allclose(back, (digit / digit.max()).ravel(), atol=0.02)
    assert same >= 40


def test_light_ink_on_dark_and_dark_on_light_are_the_same_digit() -> None:
    picture = onp.zeros((30, 20))
    picture[3:27, 8:12] = 1.0
    onp.testing.assert_array_equal(images.digit_input(picture, (8, 8), (8, 8)),
                                   images.digit_input(1.0 - picture, (8, 8), (8, 8)))


def test_mnist_digits_fit_20x20_centred_in_28x28() -> None:
    picture = onp.ones((100, 100))
    picture[10:90, 40:60] = 0.0
    x = images.digit_input(picture, (28, 28), (20, 20)).reshape(28, 28)
    rows, cols = onp.flatnonzero(x.max(axis=1)), onp.flatnonzero(x.max(axis=0))
    assert (rows[0], rows[-1]) == (4, 23) and (cols[0], cols[-1]) == (11, 15)


def test_a_blank_picture_holds_no_digit() -> None:
    with pytest.raises(ValueError, match="no digit"):
        images.digit_input(onp.ones((10, 10)), (8, 8), (8, 8))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_read_image_gives_grey_levels_from_each_kind_of_png(mode: str, tmp_path: Path) -> None:
    grey = onp.linspace(0, 1, 12).reshape(3, 4)
    pixels = {"L": grey, "RGB": onp.dstack([grey] * 3),
              "RGBA": onp.dstack([grey] * 3 + [onp.ones((3, 4))])}[mode]
    path = tmp_path / "p.png"
    if mode == "L":
        matplotlib.image.imsave(path, pixels, cmap="gray", vmin=0, vmax=1)
    else:
        matplotlib.image.imsave(path, pixels)
    onp.testing.assert_allclose(images.read_image(path), grey, atol=1 / 255)


def test_read_image_of_a_file_that_is_no_picture(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises(ValueError, match="not a picture"):
        images.read_image(tmp_path / "x.png")
