"""Downloading against a local HTTP server: verification, mirror fallback, nothing left behind."""

from __future__ import annotations

import shutil
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gradwise.data.datasets import DatasetNotFoundError, load_idx_dataset
from gradwise.data.download import DownloadError, RemoteFile, download_file, fetch_from_mirrors


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture
def served(http_server, tiny_dataset, make_spec):
    """Good files under /good/; under /bad/ the same files, same sizes, one byte changed;
    /broken/ serves the good files but hangs up halfway through each."""
    good, bad = http_server.root / "good", http_server.root / "bad"
    tiny_dataset(good)
    shutil.copytree(good, http_server.root / "broken")
    bad.mkdir()
    for path in good.iterdir():
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        (bad / path.name).write_bytes(bytes(data))
    spec = make_spec(good, mirrors=(http_server.url("good"),))
    return http_server, spec


def test_download_verifies_and_moves_files_into_the_cache(
    served, isolated_locations: Path, list_files
) -> None:
    server, spec = served
    dataset = load_idx_dataset(spec, progress=False)
    cache = isolated_locations / spec.name
    assert list_files(cache) == sorted(remote.name for remote in spec.files)
    for remote in spec.files:
        assert (cache / remote.name).read_bytes() == (
            server.root / "good" / remote.name
        ).read_bytes()
    assert dataset.x_train.shape == (12, 28, 28) and dataset.y_train.dtype == np.int64
    assert str(cache) in dataset.source and server.url("good") in dataset.source


def test_second_load_uses_the_cache_without_the_network(served, isolated_locations: Path) -> None:
    server, spec = served
    first = load_idx_dataset(spec, progress=False)
    shutil.rmtree(server.root / "good")
    second = load_idx_dataset(spec, progress=False)
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert second.source == str(isolated_locations / spec.name)


def test_checksum_mismatch_on_first_mirror_falls_back_to_second(
    served, isolated_locations: Path, list_files
) -> None:
    server, spec = served
    spec = replace(spec, mirrors=(server.url("bad"), server.url("good")))
    dataset = load_idx_dataset(spec, progress=False)
    assert server.url("good") in dataset.source
    assert list_files(isolated_locations / spec.name) == sorted(r.name for r in spec.files)
    for remote in spec.files:
        assert (isolated_locations / spec.name / remote.name).stat().st_size == remote.size


def test_all_mirrors_failing_leaves_nothing_and_lists_every_attempt(
    served, isolated_locations: Path, list_files
) -> None:
    server, spec = served
    mirrors = (server.url("bad"), server.url("missing"), server.url("broken"))
    spec = replace(spec, mirrors=mirrors)
    with pytest.raises(DatasetNotFoundError) as info:
        load_idx_dataset(spec, progress=False)
    message = str(info.value)
    for mirror in mirrors:
        assert mirror + spec.train_images.name in message
    assert "sha256 mismatch" in message and "HTTP 404" in message
    assert "connection closed" in message
    assert list_files(isolated_locations) == []


def test_server_dying_mid_transfer_leaves_nothing(served, tmp_path: Path, list_files) -> None:
    server, spec = served
    remote = spec.train_images
    target_dir = tmp_path / "downloads"
    target_dir.mkdir()
    with pytest.raises(DownloadError, match="connection closed after"):
        download_file(
            server.url("broken") + remote.name, target_dir / remote.name, remote, progress=False
        )
    assert list_files(target_dir) == []


def test_truncation_is_caught_even_without_checksums(served, tmp_path: Path, list_files) -> None:
    server, _ = served
    remote = RemoteFile("anything.bin")  # no size, no hashes: Content-Length is all we have
    target_dir = tmp_path / "downloads"
    target_dir.mkdir()
    with pytest.raises(DownloadError, match="connection closed after 500 of 1000 bytes"):
        download_file(
            server.url("broken") + remote.name, target_dir / remote.name, remote, progress=False
        )
    assert list_files(target_dir) == []


def test_fetch_tries_mirrors_in_order_and_reports_the_one_used(served, tmp_path: Path) -> None:
    server, spec = served
    mirrors = [server.url("missing"), server.url("bad"), server.url("good")]
    path, url = fetch_from_mirrors(spec.train_labels, mirrors, tmp_path / "out", progress=False)
    assert url == server.url("good") + spec.train_labels.name
    assert path.read_bytes() == (server.root / "good" / spec.train_labels.name).read_bytes()


def test_oversized_response_is_refused(served, tmp_path: Path) -> None:
    server, spec = served
    remote = RemoteFile(spec.train_images.name, size=100)  # the served file is much larger
    with pytest.raises(DownloadError, match="server announces"):
        download_file(
            server.url("good") + remote.name, tmp_path / remote.name, remote, progress=False
        )
    assert not (tmp_path / remote.name).exists()


def test_offline_gives_a_message_that_says_what_to_do(served, tmp_path: Path) -> None:
    _, spec = served
    url = closed_port_url()
    spec = replace(spec, mirrors=(url,))
    data_dir = tmp_path / "my-data"
    data_dir.mkdir()  # holds none of the files: they are downloaded into it
    with pytest.raises(DatasetNotFoundError) as info:
        load_idx_dataset(spec, data_dir=data_dir, progress=False, timeout=5)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(data_dir) in message  # the folders searched
    assert url + spec.train_images.name in message and "refused" in message.lower()
    for remote in spec.files:  # the files expected
        assert remote.name in message
    assert "--data-dir" in message and "GRADWISE_DATA" in message


def test_download_false_never_touches_the_network(served, isolated_locations: Path) -> None:
    _, spec = served
    with pytest.raises(DatasetNotFoundError, match="download=False") as info:
        load_idx_dataset(spec, download=False)
    assert not isolated_locations.exists()
    assert any("download" in attempt for attempt in info.value.attempts)


def test_only_http_and_https_urls_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="only http and https"):
        download_file("file:///etc/passwd", tmp_path / "x", RemoteFile("x"), progress=False)


def test_corrupt_file_in_cache_is_replaced_by_a_verified_download(
    served, isolated_locations: Path, capsys
) -> None:
    server, spec = served
    cache = isolated_locations / spec.name
    load_idx_dataset(spec, progress=False)
    corrupted = cache / spec.train_images.name
    corrupted.write_bytes(corrupted.read_bytes()[:-10])  # truncated by a crash, say
    dataset = load_idx_dataset(spec, progress=True)
    assert corrupted.read_bytes() == (server.root / "good" / corrupted.name).read_bytes()
    assert server.url("good") in dataset.source
    assert spec.train_images.name in capsys.readouterr().err  # the progress bar's label


def test_a_failing_mirror_then_a_working_one(served, tmp_path: Path, list_files) -> None:
    server, spec = served
    remote = spec.train_images
    mirrors = [closed_port_url(), server.url("good")]
    with pytest.raises(DownloadError) as info:
        fetch_from_mirrors(remote, mirrors[:1], tmp_path / "none", progress=False, retries=2)
    assert len(info.value.attempts) == 1  # no connection: not retried (offline falls back fast)
    path, url = fetch_from_mirrors(remote, mirrors, tmp_path / "out", progress=False, retries=2)
    assert url == server.url("good") + remote.name
    assert path.read_bytes() == (server.root / "good" / remote.name).read_bytes()
    assert list_files(tmp_path / "out") == [remote.name]


def test_a_transient_server_error_is_retried_on_the_same_mirror(served, tmp_path: Path) -> None:
    server, spec = served
    remote = spec.train_labels
    path, url = fetch_from_mirrors(remote, [server.url("flaky")], tmp_path, progress=False)
    assert url == server.url("flaky") + remote.name
    assert path.read_bytes() == (server.root / "good" / remote.name).read_bytes()
    with pytest.raises(DownloadError, match="HTTP 503") as info:  # no retries: one attempt
        download_file(server.url("flaky") + spec.test_labels.name, tmp_path / "x", spec.test_labels,
                      progress=False, retries=0)
    assert len(info.value.attempts) == 1


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_a_wrong_hash_is_refused_and_the_file_not_kept(
    served, tmp_path: Path, list_files, algorithm: str
) -> None:
    server, spec = served
    remote = replace(spec.train_labels, **{algorithm: "0" * len(getattr(spec.train_labels,
                                                                         algorithm))})
    target_dir = tmp_path / "downloads"
    target_dir.mkdir()
    (target_dir / remote.name).write_bytes(b"the old copy")
    with pytest.raises(DownloadError, match=f"{algorithm} mismatch") as info:
        download_file(server.url("good") + remote.name, target_dir / remote.name, remote,
                      progress=False)
    assert server.url("good") + remote.name in str(info.value)
    assert len(info.value.attempts) == 1  # a checksum mismatch is not retried
    assert list_files(target_dir) == [remote.name]  # no temporary file left
    assert (target_dir / remote.name).read_bytes() == b"the old copy"  # and nothing replaced


def test_a_truncated_transfer_is_retried_then_refused(served, tmp_path: Path, list_files) -> None:
    server, spec = served
    remote = spec.test_images
    target_dir = tmp_path / "downloads"
    target_dir.mkdir()
    with pytest.raises(DownloadError, match=r"connection closed after \d+ of \d+ bytes") as info:
        download_file(server.url("broken") + remote.name, target_dir / remote.name, remote,
                      progress=False, retries=2)
    assert len(info.value.attempts) == 3 and "3 attempts" in str(info.value)
    assert list_files(target_dir) == []


@pytest.mark.timeout(20)
def test_a_stalled_server_times_out_instead_of_hanging(served, tmp_path: Path, list_files) -> None:
    import time

    server, spec = served
    remote = spec.train_images
    target_dir = tmp_path / "downloads"
    target_dir.mkdir()
    start = time.monotonic()
    with pytest.raises(DownloadError, match="timed out") as info:
        download_file(server.url("stall") + remote.name, target_dir / remote.name, remote,
                      progress=False, timeout=0.3, retries=1)
    assert time.monotonic() - start < 2.5  # two attempts of 0.3 s, not the server's 3 s stall
    assert server.url("stall") + remote.name in str(info.value)
    assert list_files(target_dir) == []


def test_the_size_cap_applies_when_no_size_is_published(served, tmp_path: Path) -> None:
    server, spec = served
    remote = RemoteFile(spec.train_images.name)  # no size: max_bytes is the cap
    with pytest.raises(DownloadError, match="more than the 100-byte cap"):
        download_file(server.url("good") + remote.name, tmp_path / remote.name, remote,
                      progress=False, max_bytes=100)
    assert not (tmp_path / remote.name).exists()
    path = download_file(server.url("good") + remote.name, tmp_path / remote.name, remote,
                         progress=False, max_bytes=spec.train_images.size)
    assert path.stat().st_size == spec.train_images.size


def test_an_empty_data_dir_is_filled_by_the_download_not_replaced(
    served, isolated_locations: Path, tmp_path: Path
) -> None:
    _, spec = served
    data_dir = tmp_path / "mine"
    data_dir.mkdir()
    dataset = load_idx_dataset(spec, data_dir=data_dir, progress=False)
    assert all((data_dir / remote.name).is_file() for remote in spec.files)
    assert dataset.source.startswith(str(data_dir))
    assert not (isolated_locations / spec.name).exists()  # the cache was not used
