"""isplab.io: 8/16-bit image writing and reading, atomic writes, no silent overwrite."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from isplab.errors import InvalidInputError
from isplab.io import read_image, to_uint, write_image


@pytest.fixture
def image():
    g = torch.Generator().manual_seed(3)
    return torch.rand(1, 3, 24, 40, generator=g)


@pytest.mark.parametrize("suffix, bits, tol", [
    (".png", 8, 0.5 / 255), (".png", 16, 0.5 / 65535), (".tiff", 16, 0.5 / 65535),
    (".tif", 8, 0.5 / 255),
])
def test_lossless_round_trip(tmp_path, image, suffix, bits, tol):
    path = write_image(tmp_path / f"x{suffix}", image, bits=bits)
    back = read_image(path)
    assert back.shape == image.shape and back.dtype == torch.float32
    assert float((back - image).abs().max()) <= tol + 1e-7


def test_16bit_png_is_really_16bit(tmp_path, image):
    write_image(tmp_path / "x.png", image, bits=16)
    raw = cv2.imread(str(tmp_path / "x.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    # channel order on disk is OpenCV's BGR: the file's first channel is our blue
    np.testing.assert_array_equal(raw[..., ::-1], to_uint(image, 16))


def test_jpeg(tmp_path, image):
    smooth = torch.linspace(0, 1, 40).expand(1, 3, 24, 40).contiguous()
    write_image(tmp_path / "x.jpg", smooth, quality=98)
    assert float((read_image(tmp_path / "x.jpg") - smooth).abs().mean()) < 0.01
    with pytest.raises(InvalidInputError, match="8-bit only"):
        write_image(tmp_path / "y.jpg", image, bits=16)


def test_no_silent_overwrite_and_no_temporary_left(tmp_path, image):
    path = tmp_path / "x.png"
    path.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        write_image(path, image)
    assert path.read_bytes() == b"keep"
    write_image(path, image, overwrite=True)
    assert read_image(path).shape == image.shape
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_failed_write_leaves_nothing(tmp_path, image, monkeypatch):
    monkeypatch.setattr(cv2, "imencode", lambda *a, **k: (False, None))
    with pytest.raises(Exception, match="could not write"):
        write_image(tmp_path / "x.png", image)
    assert list(tmp_path.iterdir()) == []


def test_to_uint_rounding_and_checks():
    x = torch.tensor([0.0, 0.5 / 255, 0.499 / 255, 1.0, 1.5, -1.0]).reshape(1, 3, 1, 2)
    # H x W x 3: pixel 0 = (0, 0.499/255, 1.5), pixel 1 = (0.5/255, 1, -1); halves round up
    np.testing.assert_array_equal(to_uint(x, 8).reshape(-1), [0, 0, 255, 1, 255, 0])
    with pytest.raises(InvalidInputError):
        to_uint(torch.rand(2, 3, 4, 4))
    with pytest.raises(InvalidInputError):
        to_uint(torch.rand(3, 4, 4), bits=12)


def test_read_image_grey_and_errors(tmp_path):
    cv2.imwrite(str(tmp_path / "g.png"), np.full((4, 5), 1000, np.uint16))
    g = read_image(tmp_path / "g.png")
    assert g.shape == (1, 3, 4, 5) and torch.allclose(g, torch.tensor(1000 / 65535))
    with pytest.raises(Exception, match="no such file"):
        read_image(tmp_path / "missing.png")
