"""MNIST-style image data sets: find them on disk, or download and verify them.

Where a data set is looked for, in order (the first folder holding all four files wins):

1. ``data_dir`` when given, and its subfolder named after the data set;
2. each folder in the ``GRADWISE_DATA`` environment variable (``os.pathsep``-separated), and
   its subfolder named after the data set;
3. the per-user cache, ``$XDG_CACHE_HOME/gradwise/<name>`` or ``~/.cache/gradwise/<name>``;
4. system folders, ``SYSTEM_DATA_DIRS`` (Debian's ``dataset-fashion-mnist`` package installs
   into ``/usr/share/datasets/fashion-mnist``);
5. with ``download=True``, the data set's mirrors, into the cache, checksums verified.

Files may be gzip-compressed or not (``train-images-idx3-ubyte.gz`` or
``train-images-idx3-ubyte``). Every file found is checked as IDX and for the expected shapes.

Symlinks in these folders are followed, also to files outside them: a data folder of links
into shared storage is a common and deliberate layout, and what is read there is only ever
parsed as IDX (regular files only, size-capped, :func:`gradwise.data.idx.read_idx`), never
reported back beyond its path. This differs from run folders, which are often handed on
whole, where a symlink out of the folder is refused (:func:`gradwise.safefile.resolve_inside`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradwise._shown import shown
from gradwise.data.download import (
    DEFAULT_TIMEOUT,
    DownloadError,
    RemoteFile,
    fetch_from_mirrors,
    verify_file,
)
from gradwise.data.idx import IDXError, read_idx

__all__ = [
    "DATA_DIR_ENV",
    "DATASET_NAMES",
    "FASHION_MNIST",
    "KMNIST",
    "MNIST",
    "SYSTEM_DATA_DIRS",
    "Dataset",
    "DatasetNotFoundError",
    "IDXDatasetSpec",
    "candidate_dirs",
    "default_cache_dir",
    "load_dataset",
    "load_digits_fallback",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_kmnist",
    "load_mnist",
]

DATA_DIR_ENV = "GRADWISE_DATA"

SYSTEM_DATA_DIRS: tuple[Path, ...] = (
    Path("/usr/share/datasets"),
    Path("/usr/local/share/datasets"),
)
"""Folders whose ``<dataset name>`` subfolders are searched after the user's cache."""

Splits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class IDXDatasetSpec:
    """Everything needed to find, download and check an MNIST-style data set.

    Attributes:
        name: short name; also the cache subfolder and the folder searched in each root.
        train_images, train_labels, test_images, test_labels: the four files.
        mirrors: base URLs tried in order; a file's URL is ``mirror + file.name``.
        classes: class names, indexed by label.
        dir_names: further subfolder names to search, e.g. torchvision's ``"MNIST/raw"``.
        image_shape: the (height, width) every image must have.
    """

    name: str
    train_images: RemoteFile
    train_labels: RemoteFile
    test_images: RemoteFile
    test_labels: RemoteFile
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    dir_names: tuple[str, ...] = ()
    image_shape: tuple[int, int] = (28, 28)

    @property
    def files(self) -> tuple[RemoteFile, RemoteFile, RemoteFile, RemoteFile]:
        """The four files in order: train images, train labels, test images, test labels."""
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


# SHA-256 and sizes: tensorflow/datasets, tensorflow_datasets/url_checksums/<name>.txt.
# MD5: torchvision/datasets/mnist.py (`resources`), the same files.
MNIST = IDXDatasetSpec(
    name="mnist",
    train_images=RemoteFile(
        "train-images-idx3-ubyte.gz",
        sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
        size=9912422,
    ),
    train_labels=RemoteFile(
        "train-labels-idx1-ubyte.gz",
        sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        md5="d53e105ee54ea40749a09fcbcd1e9432",
        size=28881,
    ),
    test_images=RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        md5="9fb629c4189551a2d022fa330f9573f3",
        size=1648877,
    ),
    test_labels=RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        md5="ec29112dd5afa0611ce80d1b7f02629c",
        size=4542,
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    classes=tuple(str(digit) for digit in range(10)),
    dir_names=("MNIST/raw",),
)

FASHION_MNIST = IDXDatasetSpec(
    name="fashion-mnist",
    train_images=RemoteFile(
        "train-images-idx3-ubyte.gz",
        sha256="3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        size=26421880,
    ),
    train_labels=RemoteFile(
        "train-labels-idx1-ubyte.gz",
        sha256="a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        md5="25c81989df183df01b3e8a0aad5dffbe",
        size=29515,
    ),
    test_images=RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        sha256="346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        md5="bef4ecab320f06d8554ea6380940ec79",
        size=4422102,
    ),
    test_labels=RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        sha256="67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        md5="bb300cfdad3c16e7a12a480ee83cd310",
        size=5148,
    ),
    mirrors=(
        # An S3 website endpoint: plain HTTP only. The checksums make that safe.
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    dir_names=("FashionMNIST/raw", "fashion"),
)

KMNIST = IDXDatasetSpec(
    name="kmnist",
    train_images=RemoteFile(
        "train-images-idx3-ubyte.gz",
        sha256="51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
        md5="bdb82020997e1d708af4cf47b453dcf7",
        size=18165135,
    ),
    train_labels=RemoteFile(
        "train-labels-idx1-ubyte.gz",
        sha256="e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
        md5="e144d726b3acfaa3e44228e80efcd344",
        size=29497,
    ),
    test_images=RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        sha256="edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
        md5="5c965bf0a639b31b8f53240b1b52f4d7",
        size=3041136,
    ),
    test_labels=RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        sha256="20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        md5="7320c461ea6c1c855c0b718fb2a4b134",
        size=5120,
    ),
    mirrors=(
        "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    ),
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    dir_names=("KMNIST/raw",),
)

_SPECS = {spec.name: spec for spec in (MNIST, FASHION_MNIST, KMNIST)}
DATASET_NAMES: tuple[str, ...] = (*_SPECS, "digits")
"""Names :func:`load_dataset` accepts."""

DIGITS_SOURCE = "scikit-learn digits (8x8 images upscaled to 28x28)"


@dataclass(repr=False)
class Dataset:
    """A labelled image data set split into train and test, and where it came from.

    Shape:
        x_train: (N_train, 28, 28) uint8; y_train: (N_train,) int64; likewise for test.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str

    def splits(self) -> Splits:
        """``((x_train, y_train), (x_test, y_test))``, the format the ``load_*`` functions use."""
        return (self.x_train, self.y_train), (self.x_test, self.y_test)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, x_train={self.x_train.shape} {self.x_train.dtype}, "
            f"x_test={self.x_test.shape} {self.x_test.dtype}, classes={len(self.classes)}, "
            f"source={self.source!r})"
        )


class DatasetNotFoundError(FileNotFoundError):
    """A data set is on none of the searched folders and could not be downloaded.

    The message lists every place tried and how to provide the files.

    Attributes:
        attempts: one line per place tried, with what went wrong there.
    """

    def __init__(self, message: str, attempts: list[str], refused: list[str] | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.refused = refused or []
        """The attempts where files were found but refused (malformed, too large...)."""


class DatasetRefusedError(IDXError):
    """The files in the folder the user named (``data_dir``) exist but were refused.

    Raised instead of looking further, so training never silently uses another copy.
    """


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gradwise``, or ``~/.cache/gradwise`` when that is unset or relative."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "gradwise"


def candidate_dirs(
    spec: IDXDatasetSpec, data_dir: str | os.PathLike[str] | None = None
) -> list[tuple[str, Path]]:
    """The folders searched for ``spec``'s files, in order, each with where it came from."""
    places: list[tuple[str, Path]] = []
    if data_dir is not None:
        places += _with_subdirs("data_dir", Path(data_dir), spec)
    for entry in os.environ.get(DATA_DIR_ENV, "").split(os.pathsep):
        if entry:
            places += _with_subdirs(DATA_DIR_ENV, Path(entry), spec)
    places.append(("cache", default_cache_dir() / spec.name))
    for root in SYSTEM_DATA_DIRS:
        places += [("system", root / subdir) for subdir in (spec.name, *spec.dir_names)]
    unique: dict[Path, str] = {}
    for label, path in places:
        unique.setdefault(path.expanduser(), label)
    return [(label, path) for path, label in unique.items()]


def load_idx_dataset(
    spec: IDXDatasetSpec,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Dataset:
    """Find (or download) and load the data set ``spec`` describes.

    ``data_dir`` is the user's own choice and is never replaced by another copy: a folder that
    does not exist, holds only some of the four files (3 of 4, say), or files that are refused
    (truncated, malformed) is an error naming what is wrong. A ``data_dir`` holding none of the
    files is an error too with ``download=False``; with ``download=True`` the files are
    downloaded INTO it (as torchvision's ``root`` with ``download=True``), never elsewhere.
    Without ``data_dir``: ``$GRADWISE_DATA``, the cache, the system folders, then a download
    into the cache.

    Raises:
        DatasetRefusedError: ``data_dir`` is missing, incomplete, empty (``download=False``) or
            its files are refused.
        DatasetNotFoundError: no folder holds a valid copy and downloading was off or failed.
    """
    attempts: list[str] = []
    refused: list[str] = []
    if data_dir is not None:
        _check_data_dir(spec, Path(data_dir), download)
    # a named data_dir is searched alone: no other copy is ever used in its place
    places = (_with_subdirs("data_dir", Path(data_dir).expanduser(), spec)
              if data_dir is not None else candidate_dirs(spec))
    for label, directory in places:
        paths, problem = _find_files(directory, spec)
        if paths is None:
            attempts.append(f"{label} {shown(directory)}: {problem}")
            continue
        try:
            dataset = _load_files(spec, paths, source=str(directory))
        except (IDXError, OSError) as error:
            if label == "data_dir":  # the user's own choice: say why, never look elsewhere
                raise DatasetRefusedError(
                    f"--data-dir {shown(directory)}: the {spec.name} files there were refused: "
                    f"{str(error).splitlines()[0]}"
                ) from None
            attempts.append(f"{label} {shown(directory)}: {error}")
            refused.append(f"{shown(directory)}: {str(error).splitlines()[0]}")
            continue
        if refused:
            dataset.source += f" (copies refused elsewhere: {'; '.join(refused)})"
        return dataset

    if not download:
        attempts.append("download: not attempted (download=False)")
        raise DatasetNotFoundError(_not_found_message(spec, attempts), attempts, refused)

    # into the data_dir the user named (it holds none of the files), else into the cache
    cache = Path(data_dir).expanduser() if data_dir is not None else default_cache_dir() / spec.name
    urls: list[str] = []
    try:
        for remote in spec.files:
            cached = cache / remote.name
            if cached.is_file() and verify_file(cached, remote) is None:
                continue
            _, url = fetch_from_mirrors(
                remote, spec.mirrors, cache, timeout=timeout, progress=progress
            )
            urls.append(url)
        paths = tuple(cache / remote.name for remote in spec.files)
        origin = f" (downloaded from {_common_base(urls)})" if urls else ""
        return _load_files(spec, paths, source=f"{cache}{origin}")
    except DownloadError as error:
        attempts += [f"download {url}: {reason}" for url, reason in error.attempts]
        if not error.attempts:
            attempts.append(f"download: {error}")
    except (IDXError, OSError) as error:
        attempts.append(f"download into {cache}: {error}")
    raise DatasetNotFoundError(_not_found_message(spec, attempts), attempts, refused)


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None, download: bool = True, progress: bool = True
) -> Splits:
    """MNIST handwritten digits: ``((x_train, y_train), (x_test, y_test))``.

    Shape:
        x_train: (60000, 28, 28) uint8, y_train: (60000,) int64 in 0..9; test has 10000.
    """
    return load_idx_dataset(MNIST, data_dir, download, progress).splits()


def load_fashion_mnist(
    data_dir: str | os.PathLike[str] | None = None, download: bool = True, progress: bool = True
) -> Splits:
    """Zalando's Fashion-MNIST (10 clothing classes), same format as :func:`load_mnist`."""
    return load_idx_dataset(FASHION_MNIST, data_dir, download, progress).splits()


def load_kmnist(
    data_dir: str | os.PathLike[str] | None = None, download: bool = True, progress: bool = True
) -> Splits:
    """Kuzushiji-MNIST (10 cursive hiragana), same format as :func:`load_mnist`."""
    return load_idx_dataset(KMNIST, data_dir, download, progress).splits()


def load_digits_fallback(test_fraction: float = 0.2) -> Splits:
    """scikit-learn's 8x8 digits, reshaped to look like MNIST: needs no files or network.

    Each 8x8 image (values 0..16) is scaled to 0..255, upsampled 3x to 24x24 and centred in
    a 28x28 frame, so models built for MNIST run on it unchanged. The split is a fixed
    shuffle (seed 0): the file is ordered by writer, and cutting off its tail would test only on
    writers the model never saw, making test accuracy look ~7 points worse than validation.

    Shape:
        x_train: (1438, 28, 28) uint8, y_train: (1438,) int64; x_test: (359, 28, 28) uint8.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"load_digits_fallback: test_fraction must be in (0, 1), got {test_fraction}"
        )
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    digits = load_digits()
    small = digits.images  # (N, 8, 8) float64, values 0..16
    scaled = np.rint(small * (255.0 / 16.0)).astype(np.uint8)
    upsampled = np.kron(scaled, np.ones((1, 3, 3), dtype=np.uint8))  # (N, 24, 24)
    images = np.pad(upsampled, ((0, 0), (2, 2), (2, 2)))  # (N, 28, 28)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], labels[order]
    n_test = round(len(images) * test_fraction)
    split = len(images) - n_test
    return (images[:split], labels[:split]), (images[split:], labels[split:])


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    fallback: bool = False,
    progress: bool = True,
) -> Dataset:
    """Load a data set by name: ``"mnist"``, ``"fashion-mnist"``, ``"kmnist"`` or ``"digits"``.

    With ``fallback=True``, a data set that cannot be found or downloaded is replaced by the
    scikit-learn digits (see :func:`load_digits_fallback`); the result's ``name`` is then
    ``"digits"`` and its ``source`` says why.

    Raises:
        ValueError: unknown name.
        DatasetNotFoundError: not found, and ``fallback`` is False.
    """
    key = name.strip().lower().replace("_", "-")
    if key == "digits":
        return _digits_dataset(DIGITS_SOURCE)
    spec = _SPECS.get(key)
    if spec is None:
        raise ValueError(f"load_dataset: unknown data set {name!r}; choose from {DATASET_NAMES}")
    try:
        return load_idx_dataset(spec, data_dir, download, progress)
    except DatasetNotFoundError as error:
        if not fallback:
            raise
        return _digits_dataset(
            f"scikit-learn digits fallback: {spec.name} was not found "
            f"({len(error.attempts)} places tried; provide it with --data-dir DIR or "
            f"{DATA_DIR_ENV}=DIR, or allow downloading)"
        )


def _digits_dataset(source: str) -> Dataset:
    (x_train, y_train), (x_test, y_test) = load_digits_fallback()
    classes = [str(digit) for digit in range(10)]
    return Dataset("digits", x_train, y_train, x_test, y_test, classes, source)


def _with_subdirs(label: str, root: Path, spec: IDXDatasetSpec) -> list[tuple[str, Path]]:
    return [(label, root)] + [(label, root / subdir) for subdir in (spec.name, *spec.dir_names)]


def _check_data_dir(spec: IDXDatasetSpec, data_dir: Path, download: bool = False) -> None:
    """Refuse a ``data_dir`` that does not exist, holds an incomplete set of ``spec``'s files
    in every folder searched there (it and its subfolders named after the data set), or holds
    none of them when ``download`` is False (with ``download`` they are downloaded into it).

    Raises:
        DatasetRefusedError: naming the folder and the files found, missing or expected.
    """
    if not data_dir.is_dir():
        what = "not a folder" if os.path.lexists(data_dir) else "no such folder"
        raise DatasetRefusedError(
            f"data_dir {shown(data_dir)}: {what}; give the folder that holds the {spec.name} "
            "files (or no data_dir, to search the usual places)"
        )
    partial: list[str] = []
    for _, directory in _with_subdirs("data_dir", data_dir, spec):
        paths, problem = _find_files(directory, spec)
        if paths is not None:
            return  # a complete set (it may still be refused when read)
        present = [remote.name for remote in spec.files
                   if any(os.path.lexists(directory / name)
                          for name in (remote.name, remote.name.removesuffix(".gz")))]
        if present:
            partial.append(f"{shown(directory)} has {len(present)} of {len(spec.files)} "
                           f"({problem})")
    if partial:
        raise DatasetRefusedError(
            f"data_dir {shown(data_dir)}: incomplete {spec.name} set: {'; '.join(partial)}; "
            "all four files are needed (gzip-compressed or not), and no other copy is used in "
            "their place"
        )
    if not download:
        raise DatasetRefusedError(
            f"--data-dir {shown(data_dir)} holds no {spec.name} files; put the four IDX files "
            f"there (gzip-compressed or not: {', '.join(r.name for r in spec.files)}), or give "
            "no data_dir to search the usual places; no other copy is used in its place"
        )


def _find_files(directory: Path, spec: IDXDatasetSpec) -> tuple[tuple[Path, ...] | None, str]:
    """The four files in ``directory`` (each gzip or plain), or None and what is missing."""
    if not directory.is_dir():
        return None, "no such folder"
    found: list[Path] = []
    missing: list[str] = []
    for remote in spec.files:
        names = (remote.name, remote.name.removesuffix(".gz"))
        # anything by that name counts (a FIFO or a link to /dev/zero is then refused by the
        # reader, with a reason) rather than being skipped in silence
        path = next((directory / n for n in names if os.path.lexists(directory / n)), None)
        if path is None:
            missing.append(remote.name)
        else:
            found.append(path)
    if missing:
        return None, "missing " + ", ".join(missing)
    return tuple(found), ""


def _load_files(spec: IDXDatasetSpec, paths: tuple[Path, ...], source: str) -> Dataset:
    train_images, train_labels, test_images, test_labels = paths
    x_train, y_train = _load_pair(spec, train_images, train_labels)
    x_test, y_test = _load_pair(spec, test_images, test_labels)
    return Dataset(spec.name, x_train, y_train, x_test, y_test, list(spec.classes), source)


def _load_pair(
    spec: IDXDatasetSpec, images_path: Path, labels_path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check one split's images and labels."""
    images = read_idx(images_path)
    expected_shape = ("N", *spec.image_shape)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != spec.image_shape:
        raise IDXError(
            f"{shown(images_path)}: expected uint8 images of shape {expected_shape}, "
            f"got {images.dtype} {images.shape}"
        )
    labels = read_idx(labels_path)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IDXError(
            f"{shown(labels_path)}: expected a 1-d uint8 label vector, got {labels.dtype} "
            f"{labels.shape}"
        )
    if len(labels) != len(images):
        raise IDXError(
            f"{shown(labels_path)}: {len(labels)} labels for {len(images)} images in "
            f"{shown(images_path.name)}"
        )
    if len(labels) and int(labels.max()) >= len(spec.classes):
        raise IDXError(
            f"{shown(labels_path)}: label {int(labels.max())} is out of range for "
            f"{len(spec.classes)} classes"
        )
    return images, labels.astype(np.int64)


def _common_base(urls: list[str]) -> str:
    bases = sorted({url.rsplit("/", 1)[0] + "/" for url in urls})
    return ", ".join(bases)


def _not_found_message(spec: IDXDatasetSpec, attempts: list[str]) -> str:
    tried = "\n".join(f"  - {attempt}" for attempt in attempts)
    names = "\n".join(f"    {remote.name}" for remote in spec.files)
    cache = default_cache_dir() / spec.name
    return (
        f"{spec.name} data set not found. Places tried:\n{tried}\n"
        f"To use files you already have, put these four IDX files (gzip-compressed or not) in "
        f"one folder:\n{names}\n"
        f"and pass it with --data-dir DIR (data_dir=DIR in Python), set {DATA_DIR_ENV}=DIR, "
        f"or copy them into {cache}.\n"
        f"To download them instead, connect to the internet and allow downloading; "
        f"mirrors: {', '.join(spec.mirrors)}"
    )
