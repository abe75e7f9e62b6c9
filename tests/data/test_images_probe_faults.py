"""The probe's faults in the generated and published image sets: MNIST-1D's cache (its place, its check, a set
it cannot hold, a place it cannot write) and the caller's random generators; MNIST's and CIFAR-10's downloads."""

from __future__ import annotations

import random
import shutil
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest

import neuroview.data.images as images
from neuroview.data import CIFAR10DataModule, MNIST1DDataModule, MNISTDataModule, cache_dir
from neuroview.data.mnist1d import _other_set

from datafiles import make_cifar, make_mnist  # noqa: E402 - tiny files in the real formats

KEYS = ("x", "y", "x_test", "y_test")


@pytest.fixture(scope="module")
def default_set():
    from mnist1d.data import get_dataset_args, make_dataset

    states = np.random.get_state(), random.getstate()  # make_dataset seeds both
    try:
        d = make_dataset(get_dataset_args())  # the real default set, generated once (~3 s)
    finally:
        np.random.set_state(states[0])
        random.setstate(states[1])
    return {k: np.asarray(d[k]) for k in KEYS}


@pytest.fixture
def generator(default_set, monkeypatch):
    """mnist1d's make_dataset, answering ``sets[0]`` (a copy of the default set unless changed) without the ~3 s."""
    import mnist1d.data

    sets = [{k: v.copy() for k, v in default_set.items()}]
    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda *a, **k: {k: v.copy() for k, v in sets[0].items()})
    return sets


# ------------------------------------------------------------------------------- MNIST-1D
def test_building_mnist1d_leaves_the_callers_random_generators_alone(tmp_path, monkeypatch):
    """make_dataset seeds numpy's and Python's global generators: a seeded script drew another stream after
    MNIST1DDataModule's setup, and only when the cache did not exist."""
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path))
    np.random.seed(0)
    random.seed(0)
    want = (np.random.rand(), random.random())
    np.random.seed(0)
    random.seed(0)
    MNIST1DDataModule(cache=False).setup("fit")
    assert (np.random.rand(), random.random()) == want


@pytest.mark.parametrize("change", ["steps shuffled", "signs flipped"])
def test_a_mnist1d_cache_of_the_same_values_in_another_order_or_sign_is_refused(change, default_set, generator, tmp_path,
                                                                                 monkeypatch):
    """mnist1d's shuffle_seq=True set (every series' steps permuted, as here) has the default set's labels and
    sums of |x|: it passed the check and was read as the set every MNIST-1D figure was measured on."""
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path))
    assert _other_set(default_set) is None  # the pins are the real default set's
    perm = np.random.default_rng(0).permutation(40)
    other = {k: (v[:, perm] if change == "steps shuffled" else -v) if k.startswith("x") else v
             for k, v in default_set.items()}
    np.savez(tmp_path / "mnist1d_default_v1.npz", **other)
    with pytest.raises(ValueError, match=r"cache: expected the MNIST-1D set of mnist1d's defaults in .*, got another set "
                                         r"\(other series in 'x' \(position-weighted sum"):
        MNIST1DDataModule().setup()


def test_mnist1d_generating_another_set_by_default_warns_and_does_not_cache_it(generator, tmp_path, monkeypatch):
    """With another installed mnist1d, cache=True wrote the other set under the default set's name, then refused
    it on the read ("delete it or pass cache=False"); deleting it repeated the cycle."""
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path))
    generator[0]["x"] = generator[0]["x"] + 1e-3
    for _ in range(2):
        dm = MNIST1DDataModule()
        with pytest.warns(UserWarning, match=r"generated another set than the one .* \(the set is not cached"):
            dm.prepare_data()
            dm.setup()
        assert sum(dm.split_sizes().values()) == 5000
    assert not (tmp_path / "mnist1d_default_v1.npz").exists()


def test_an_unwritable_mnist1d_cache_warns_and_the_set_is_used(generator, tmp_path, monkeypatch):
    """A cache place that cannot be written (NEUROVIEW_CACHE naming a file) failed with mkdir's bare FileExistsError."""
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "afile"))
    dm = MNIST1DDataModule()
    with pytest.warns(UserWarning, match=r"could not cache the set in .*afile.*NEUROVIEW_CACHE .*cache=False"):
        dm.setup()
    assert sum(dm.split_sizes().values()) == 5000


def test_neuroview_cache_is_expanded_and_absolute_and_a_relative_xdg_cache_home_ignored(tmp_path, monkeypatch):
    """NEUROVIEW_CACHE="~/..." (quoted in a job file) made a folder named "~" in every working directory."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("NEUROVIEW_CACHE", "~/nv")
    assert cache_dir() == tmp_path / "nv"
    monkeypatch.setenv("NEUROVIEW_CACHE", "rel")
    assert cache_dir() == tmp_path / "work" / "rel"
    monkeypatch.delenv("NEUROVIEW_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG spec: relative paths are invalid, ignore them
    assert cache_dir() == tmp_path / ".cache" / "neuroview"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "neuroview"


# ------------------------------------------------------------------------------- CIFAR-10
def _archive(tmp_path):
    make_cifar(tmp_path / "src")
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return path


def test_cifar_download_fetches_a_folder_missing_one_batch(tmp_path, monkeypatch):
    """Only test_batch was looked for: a folder missing data_batch_3 was never fetched, and the error said to pass
    the download=True the caller had passed."""
    archive = _archive(tmp_path)
    root = tmp_path / "root"
    shutil.copytree(tmp_path / "src", root)
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    fetched = []
    monkeypatch.setattr(images, "_download", lambda url, dest: (fetched.append(url), shutil.copy(archive, dest)))
    dm = CIFAR10DataModule(str(root), download=True, val_fraction=0)
    dm.prepare_data()
    dm.setup("fit")
    assert fetched == [CIFAR10DataModule.URL] and dm.split_sizes() == {"train": 100, "test": 20}


def test_cifar_missing_batches_with_download_passed_do_not_say_pass_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing \['data_batch_1'.*download=True fetches them in "
                                                r"prepare_data\(\)") as e:
        CIFAR10DataModule(str(tmp_path), download=True).setup()
    assert "pass download=True" not in str(e.value)


@pytest.mark.parametrize("damage", ["cut short", "gzip header only"])
def test_a_damaged_cifar_archive_is_refused_naming_it(damage, tmp_path):
    """A cut-short archive gave tarfile's bare ReadError (or a zlib error), naming neither file nor fix."""
    archive = _archive(tmp_path)
    data = archive.read_bytes()
    archive.write_bytes(data[:len(data) // 2] if damage == "cut short" else b"\x1f\x8b\x08\x00" + b"\x00" * 100)
    with pytest.raises(ValueError, match=r"root: expected CIFAR-10's archive .* in .*cifar-10-python.tar.gz, got a file "
                                         r"that does not unpack .*delete it to download it again"):
        CIFAR10DataModule(str(tmp_path), download=True).prepare_data()


# ------------------------------------------------------------------------------- MNIST
def test_mnist_download_offline_names_the_url_the_folder_and_the_way_round(tmp_path, monkeypatch):
    """Offline, download=True gave urllib's bare URLError: no URL, no folder, no "place the files there"."""

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(OSError, match=r"download: could not fetch https://\S+/train-images-idx3-ubyte.gz into "
                                      rf"'{tmp_path}' \(URLError: .*Name or service.*place it in that folder"):
        MNISTDataModule(str(tmp_path), download=True).prepare_data()
    assert list(tmp_path.iterdir()) == []  # no .part left behind


def test_mnist_one_missing_file_is_named_with_those_found(tmp_path):
    """Only t10k's labels missing was reported as the test images and labels "found neither"."""
    make_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['t10k-labels-idx1-ubyte'\], found \['train-images-idx3-ubyte', "
                                                r"'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte'\]; pass download=True"):
        MNISTDataModule(str(tmp_path)).setup()
