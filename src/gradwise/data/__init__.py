"""gw.data: data sets, IDX files, toy problems and mini-batching, on NumPy alone.

This layer imports nothing else from gradwise except the shared atomic-write helper.
"""

from gradwise.data.datasets import (
    DATA_DIR_ENV,
    DATASET_NAMES,
    FASHION_MNIST,
    KMNIST,
    MNIST,
    SYSTEM_DATA_DIRS,
    Dataset,
    DatasetNotFoundError,
    DatasetRefusedError,
    IDXDatasetSpec,
    candidate_dirs,
    default_cache_dir,
    load_dataset,
    load_digits_fallback,
    load_fashion_mnist,
    load_idx_dataset,
    load_kmnist,
    load_mnist,
)
from gradwise.data.download import (
    DownloadError,
    RemoteFile,
    download_file,
    fetch_from_mirrors,
    verify_file,
)
from gradwise.data.idx import IDXError, read_idx, write_idx
from gradwise.data.loader import ArrayDataset, DataLoader
from gradwise.data.sampler import DistributedSampler
from gradwise.data.toy import (
    make_blobs,
    make_circles,
    make_customers,
    make_moons,
    make_spirals,
    make_xor,
)
from gradwise.data.transforms import normalize_images, standardize, train_val_split

__all__ = [
    "DATASET_NAMES",
    "DATA_DIR_ENV",
    "FASHION_MNIST",
    "KMNIST",
    "MNIST",
    "SYSTEM_DATA_DIRS",
    "ArrayDataset",
    "DataLoader",
    "Dataset",
    "DatasetNotFoundError",
    "DatasetRefusedError",
    "DistributedSampler",
    "DownloadError",
    "IDXDatasetSpec",
    "IDXError",
    "RemoteFile",
    "candidate_dirs",
    "default_cache_dir",
    "download_file",
    "fetch_from_mirrors",
    "load_dataset",
    "load_digits_fallback",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_kmnist",
    "load_mnist",
    "make_blobs",
    "make_circles",
    "make_customers",
    "make_moons",
    "make_spirals",
    "make_xor",
    "normalize_images",
    "read_idx",
    "standardize",
    "train_val_split",
    "verify_file",
    "write_idx",
]
