"""Digit pictures become MNIST-style 28x28 images whatever their size, colours and format."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gradwise.data import load_digits_fallback
from gradwise.imageprep import ImagePrepError, load_digit_image, prepare_digit


def seven(size=(200, 300), ink=0, paper=255, mode="L") -> Image.Image:
    """A '7' drawn off-centre on a canvas of the given size and colours."""
    width, height = size
    image = Image.new(mode, size, paper)
    corners = [(0.2, 0.1), (0.6, 0.1), (0.35, 0.7)]  # fractions of the canvas
    points = [(x * width, y * height) for x, y in corners]
    ImageDraw.Draw(image).line(points, fill=ink, width=max(2, width // 12))
    return image


def ink_box(image: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero(image.max(axis=1) > 0)
    cols = np.flatnonzero(image.max(axis=0) > 0)
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_mnist_style_is_a_20px_digit_centred_by_mass_in_28x28() -> None:
    image = prepare_digit(seven())
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert image.max() == 255 and image[0].max() == image[:, 0].max() == 0  # light ink on dark
    assert max(ink_box(image)) in (20, 21)  # resampling may bleed one faint pixel
    rows, cols = np.indices(image.shape)
    mass = image.astype(np.float64)
    center = ((rows * mass).sum() / mass.sum(), (cols * mass).sum() / mass.sum())
    np.testing.assert_allclose(center, (13.5, 13.5), atol=1.0)


@pytest.mark.parametrize(
    "variant",
    [
        {"ink": 255, "paper": 0},  # chalk on a blackboard
        {"mode": "RGB", "ink": (20, 20, 90), "paper": (250, 245, 230)},  # blue pen on cream
        {"size": (40, 60)},  # small
        {"size": (1200, 1800)},  # large
    ],
)
def test_colours_and_sizes_give_the_same_digit(variant) -> None:
    reference = prepare_digit(seven()).astype(np.float64)
    other = prepare_digit(seven(**variant)).astype(np.float64)
    correlation = np.corrcoef(reference.ravel(), other.ravel())[0, 1]
    assert correlation > 0.85, correlation


def test_transparent_background_is_handled() -> None:
    drawn = seven(mode="RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0))  # black ink, clear paper
    assert prepare_digit(drawn).max() == 255


def test_digits_style_matches_the_scikit_learn_fallback_format() -> None:
    image = prepare_digit(seven(), style="digits")
    (x_train, _), _ = load_digits_fallback()
    assert image.shape == x_train.shape[1:] and image.dtype == x_train.dtype
    assert set(np.unique(image)) <= set(np.unique(x_train))  # 17 grey levels
    blocks = image[2:26, 2:26].reshape(8, 3, 8, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()  # each 8x8 pixel is a 3x3 block
    assert not image[:2].any() and not image[:, -2:].any()


def test_fashion_style_fills_the_frame() -> None:
    assert max(ink_box(prepare_digit(seven(), style="fashion"))) == 28


def test_files_are_read_and_bad_files_are_named(tmp_path) -> None:
    seven().save(tmp_path / "seven.jpg")
    assert load_digit_image(tmp_path / "seven.jpg").shape == (28, 28)
    (tmp_path / "notes.png").write_text("not a picture")
    Image.new("L", (30, 30), 200).save(tmp_path / "blank.png")
    for name, fragment in [("missing.png", "no such file"), ("notes.png", "not an image"),
                           ("blank.png", "no digit found")]:
        with pytest.raises(ImagePrepError, match=fragment) as caught:
            load_digit_image(tmp_path / name)
        assert name in str(caught.value)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="style must be one of"):
        prepare_digit(seven(), style="emnist")
    with pytest.raises(ImagePrepError, match=r"\(H, W\)"):
        prepare_digit(np.zeros((4, 4, 2)))
