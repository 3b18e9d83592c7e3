"""aigfd_lite.evaluation.generators: the shipped DCGAN and the autoencoder the book trains."""
import numpy as np
import pytest
import torch

from aigfd_lite.evaluation.generators import (DCGANGenerator, FaceAutoencoder, fetch_or_train_autoencoder, load_dcgan,
                                   reconstruct, sample_dcgan, to_uint8, train_autoencoder)


def test_dcgan_architecture_shapes():
    g = DCGANGenerator().eval()
    assert g(torch.zeros(2, 100, 1, 1)).shape == (2, 3, 64, 64)


def test_shipped_dcgan_weights_load_strictly_and_sample():
    model = load_dcgan()  # the real file of the fetched dcgan-faces source
    a = sample_dcgan(4, seed=1, model=model)
    b = sample_dcgan(4, seed=1, model=model)
    assert a.shape == (4, 64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_dcgan(4, seed=2, model=model))
    assert a.std() > 20  # images, not a constant


def test_load_dcgan_rejects_other_files(tmp_path):
    torch.save({"something": torch.zeros(1)}, tmp_path / "w.tar")
    with pytest.raises(ValueError, match="netG_state_dict"):
        load_dcgan(tmp_path / "w.tar")


def test_to_uint8_maps_range():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 128, 255, 255]


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 16, dtype=np.float64)
    imgs = base[None, :, None, None] * np.ones((12, 16, 16, 3)) + rng.normal(0, 5, (12, 16, 16, 3))
    return imgs.clip(0, 255).astype(np.uint8)


def test_autoencoder_learns_and_is_seeded(faces):
    m1, log1 = train_autoencoder(faces, size=16, epochs=6, seed=3, progress=False)
    m2, _ = train_autoencoder(faces, size=16, epochs=6, seed=3, progress=False)
    assert log1["loss"].iloc[-1] < log1["loss"].iloc[0]
    r1, r2 = reconstruct(m1, faces), reconstruct(m2, faces)
    assert r1.shape == (12, 16, 16, 3)
    np.testing.assert_array_equal(r1, r2)


def test_fetch_or_train_caches(faces, tmp_path):
    m1, log = fetch_or_train_autoencoder(faces, size=16, epochs=2, checkpoint_dir=tmp_path, progress=False)
    assert log is not None and len(list(tmp_path.glob("*.pt"))) == 1
    m2, log2 = fetch_or_train_autoencoder(faces, size=16, epochs=2, checkpoint_dir=tmp_path, progress=False)
    assert log2 is None
    np.testing.assert_array_equal(reconstruct(m1, faces), reconstruct(m2, faces))
    _, log3 = fetch_or_train_autoencoder(faces[:-1], size=16, epochs=2, checkpoint_dir=tmp_path, progress=False)
    assert log3 is not None  # other training images: trained anew, not the stale cache


def test_bad_inputs():
    with pytest.raises(ValueError):
        FaceAutoencoder(size=30)
    with pytest.raises(ValueError):
        train_autoencoder(np.zeros((1, 8, 8, 3), np.uint8), size=8)


def test_interrupted_checkpoint_write_leaves_no_partial_file(faces, tmp_path, monkeypatch):
    def killed(obj, path):
        with open(path, "wb") as fh:
            fh.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)  # generators calls torch.save through the torch module
    with pytest.raises(KeyboardInterrupt):
        fetch_or_train_autoencoder(faces, size=16, epochs=1, checkpoint_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
