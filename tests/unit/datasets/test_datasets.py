"""``mfsde.datasets``: data sets by name from a local folder, the cache or a download, always checked
against a pinned SHA-256. Downloads are tested for real against an HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

import mfsde
from mfsde import datasets
from mfsde.datasets import DatasetError

SHARED = REPO.parent / "shared" / "data"
CSV = "samples,x1,x2\n" + "".join(f"{k},{0.1 * i + k},{-0.2 * i}\n" for k in range(3) for i in range(5))


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over ``tmp_path / "www"``; yields (base url, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):  # quiet
            pass

        def do_GET(self):
            seen.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", root, seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def serve_emt(monkeypatch, base: str, root: Path, text: str = CSV, sha: str | None = None):
    """Serve ``text`` as the EMT file and pin ``sha`` (default: its own hash)."""
    (root / "emt.csv").write_text(text)
    pinned = sha or hashlib.sha256(text.encode()).hexdigest()
    monkeypatch.setitem(datasets.DATASETS, "emt", datasets._File("emt", "emt.csv", base + "emt.csv", pinned))
    monkeypatch.delenv("MFSDE_DATA_DIR", raising=False)
    return pinned


def test_download_then_cache(server, tmp_path, monkeypatch):
    base, root, seen = server
    serve_emt(monkeypatch, base, root)
    cache = tmp_path / "cache"
    snaps = datasets.emt(cache_dir=cache)
    assert snaps.n_times == 3 and snaps.dim == 2 and [len(a) for a in snaps.data] == [5, 5, 5]
    assert (cache / "emt" / "emt.csv").read_text() == CSV and seen == ["/emt.csv"]
    datasets.emt(cache_dir=cache)  # from the cache: no second request
    assert seen == ["/emt.csv"]
    adata = datasets.emt(cache_dir=cache, anndata=True)
    assert adata.shape == (15, 2) and sorted(set(adata.obs["time"])) == [0.0, 1.0, 2.0]
    assert np.allclose(adata.obsm["X_data"], np.concatenate(snaps.data))


def test_a_corrupted_or_truncated_cached_file_is_fetched_again(server, tmp_path, monkeypatch):
    base, root, seen = server
    serve_emt(monkeypatch, base, root)
    cache = tmp_path / "cache"
    datasets.fetch("emt", cache_dir=cache)
    (cache / "emt" / "emt.csv").write_text(CSV[:20])  # truncated
    path = datasets.fetch("emt", cache_dir=cache)
    assert path.read_text() == CSV and len(seen) == 2


def test_a_download_with_the_wrong_hash_is_refused_and_not_kept(server, tmp_path, monkeypatch):
    base, root, _ = server
    serve_emt(monkeypatch, base, root, sha="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="does not match its pinned SHA-256 and was deleted") as e:
        datasets.emt(cache_dir=cache)
    assert "\n" not in str(e.value)
    assert not any(p.is_file() for p in cache.rglob("*"))  # nothing that could later pass as valid


def test_an_unreachable_source_says_where_to_put_the_file(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve_emt(monkeypatch, f"http://127.0.0.1:{port}/", tmp_path)
    with pytest.raises(
        DatasetError,
        match=r"could not download emt.csv from http://127.0.0.1:\d+/emt.csv .*"
        r"put emt.csv in \$MFSDE_DATA_DIR/emt",
    ) as e:
        datasets.emt(cache_dir=tmp_path / "cache")
    assert "\n" not in str(e.value)
    with pytest.raises(DatasetError, match="download=False"):
        datasets.emt(cache_dir=tmp_path / "cache", download=False)


def test_an_unwritable_cache_is_one_line(server, tmp_path, monkeypatch):
    base, root, _ = server
    serve_emt(monkeypatch, base, root)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DatasetError, match=f"cannot write to the data cache {blocker}/emt") as e:
        datasets.emt(cache_dir=blocker)
    assert "\n" not in str(e.value)


def test_a_local_folder_comes_first_and_is_checked(server, tmp_path, monkeypatch):
    base, root, seen = server
    serve_emt(monkeypatch, base, root)
    local = tmp_path / "mine" / "emt"
    local.mkdir(parents=True)
    (local / "emt.csv").write_text(CSV)
    monkeypatch.setenv("MFSDE_DATA_DIR", str(tmp_path / "mine"))
    assert datasets.fetch("emt", cache_dir=tmp_path / "cache") == local / "emt.csv" and seen == []
    (local / "emt.csv").write_text(CSV.replace("0.1", "0.2"))
    with pytest.raises(DatasetError, match="does not match the published emt.csv"):
        datasets.fetch("emt", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: datasets.fetch("zebrafish"), "unknown data file 'zebrafish'; known: bargaje"),
        (lambda: datasets.cite(dim=30), "cite: dim must be 50 or 100; got 30"),
        (lambda: datasets.interacting_grn("repel"), "kind must be one of attract, LJ, no_interact; got 'repel'"),
    ],
)
def test_bad_names_and_options_are_one_line(call, match):
    with pytest.raises(DatasetError, match=match):
        call()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data (the published files) is not here")
def test_the_published_files_load_from_a_data_dir_and_match_their_pins(monkeypatch):
    monkeypatch.setenv("MFSDE_DATA_DIR", str(SHARED))
    emt = mfsde.datasets.emt(download=False)
    assert [len(a) for a in emt.data] == [577, 885, 788, 883] and emt.dim == 10
    cite = mfsde.datasets.cite(50, download=False)
    assert list(cite.times) == [2, 3, 4, 7] and cite.dim == 50 and sum(len(a) for a in cite.data) == 29394
    assert mfsde.datasets.bargaje(download=False).n_times == 8
    assert mfsde.datasets.weinreb(download=False).dim == 2
    for kind in ("attract", "LJ", "no_interact"):
        assert mfsde.datasets.interacting_grn(kind, download=False).n_times == 5
