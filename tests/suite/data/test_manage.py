"""build / verify / add, and the DVC directory hash."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from suite.data import manage, readers, registry


def test_verify_passes_then_names_a_changed_file(smoke_build, tmp_path):
    source, _ = smoke_build
    root = tmp_path / "data"
    shutil.copytree(source, root)
    report = manage.verify(profile="smoke", root=root, workers=1)
    assert report["ok"] and report["dvc"] is None
    assert all(entry["status"] == "same" for entry in report["datasets"].values())
    flo = sorted((root / "mini-flow" / "data").glob("*.flo"))[0]
    flow = readers.read_flo(flo)
    flow[0, 0, 0] += 1
    readers.write_flo(flo, flow)
    (root / "mini-edges" / "meta.json").unlink()
    with pytest.raises(manage.DataVerificationError) as raised:
        manage.verify(profile="smoke", root=root, workers=1)
    message = str(raised.value)
    assert "mini-flow: differs" in message and f"differs: data/{flo.name}" in message
    assert "missing: meta.json" in message
    lenient = manage.verify(profile="smoke", root=root, workers=1, strict=False)
    assert not lenient["ok"] and lenient["datasets"]["mini-stereo"]["status"] == "same"


def test_verify_checks_the_dvc_md5(smoke_build, tmp_path):
    source, _ = smoke_build
    root = tmp_path / "data"
    shutil.copytree(source, root)
    files = {}
    for folder in sorted(root.iterdir()):
        files.update({f"{folder.name}/{k}": v for k, v in registry.manifest(folder)["files"].items()})
    good = manage.dvc_dir_md5(files)
    dvc_file = tmp_path / "data.dvc"
    dvc_file.write_text(f"outs:\n- md5: {good}\n  size: 1\n  nfiles: {len(files)}\n  hash: md5\n  path: data\n")
    assert manage.read_dvc_md5(dvc_file)["md5"] == good
    assert manage.verify(profile="smoke", root=root, workers=1)["dvc"]["match"]
    dvc_file.write_text(dvc_file.read_text().replace(good, "0" * 32 + ".dir"))
    with pytest.raises(manage.DataVerificationError, match="data.dvc records md5 0+\\.dir"):
        manage.verify(profile="smoke", root=root, workers=1)


def test_dvc_dir_md5_matches_dvc(tmp_path):
    """Our directory hash is the one `dvc add` records (cross-check with DVC itself)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    data = tmp_path / "data"
    (data / "a" / "b").mkdir(parents=True)
    (data / "a" / "b" / "x.txt").write_text("hello\n")
    (data / "a" / "y.bin").write_bytes(bytes(range(256)))
    (data / "z.txt").write_text("z")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "add", "-q", "data"], cwd=tmp_path, check=True)
    files = {"a/b/x.txt": registry.file_md5(data / "a/b/x.txt"), "a/y.bin": registry.file_md5(data / "a/y.bin"),
             "z.txt": registry.file_md5(data / "z.txt")}
    assert manage.read_dvc_md5(tmp_path / "data.dvc")["md5"] == manage.dvc_dir_md5(files)


def _otb_folder(path):
    from PIL import Image

    sequence = path / "Toy"
    (sequence / "img").mkdir(parents=True)
    for frame in (1, 2):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(sequence / "img" / f"{frame:04d}.jpg")
    (sequence / "groundtruth_rect.txt").write_text("1,1,3,3\n2,2,3,3\n")
    return path


def test_add_copies_or_links_after_checking(tmp_path, monkeypatch):
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path / "cache"))
    source = _otb_folder(tmp_path / "otb-source")
    root = tmp_path / "data"
    report = manage.add(source, as_id="otb", root=root)
    assert report["samples"] == 1 and (root / "otb" / "Toy" / "groundtruth_rect.txt").is_file()
    assert not (root / "otb").is_symlink() and report["dvc"]["recorded"] is False
    with pytest.raises(FileExistsError):
        manage.add(source, as_id="otb", root=root)
    linked = manage.add(source, as_id="otb", root=root, link=True, overwrite=True)
    assert (root / "otb").is_symlink() and linked["version"] == report["version"]
    monkeypatch.setenv("ENERGYBENCH_DATA", str(root))
    assert registry.version("otb") == report["version"]


def test_add_rejects_bad_layout_and_files(tmp_path):
    with pytest.raises(ValueError, match="did you mean"):
        manage.add(tmp_path, as_id="bsds5000", root=tmp_path / "data")
    with pytest.raises(readers.LayoutError, match="no test images"):
        manage.add(tmp_path, as_id="bsds500", root=tmp_path / "data")
    source = _otb_folder(tmp_path / "broken")
    (source / "Toy" / "groundtruth_rect.txt").write_text("1,1,3\n")
    with pytest.raises(readers.MalformedFileError, match="groundtruth_rect.txt"):
        manage.add(source, as_id="otb", root=tmp_path / "data")
    assert not (tmp_path / "data" / "otb").exists()


@pytest.mark.slow
def test_committed_data_dvc_matches_a_fresh_mini_build():
    """`energybench data verify` on the repository: the mini rebuild gives data.dvc's md5."""
    import time

    root = registry.repo_root() / "data"
    if manage.read_dvc_md5(root.parent / "data.dvc") is None:
        pytest.skip("no data.dvc in the repository")
    started = time.perf_counter()
    report = manage.verify(profile="mini", root=root, strict=False, workers=2)
    assert report["dvc"]["match"], report["dvc"]
    assert report["build_seconds"] < 120, f"mini build took {report['build_seconds']} s (budget 120 s on 2 cores)"
    if all(entry["status"] != "missing" for entry in report["datasets"].values()):
        assert report["ok"], {k: v["differing_files"][:3] for k, v in report["datasets"].items()}
    assert time.perf_counter() - started < 300


def test_linked_dataset_stays_out_of_dvc_and_of_verify(tmp_path, monkeypatch):
    """DVC skips a symlinked folder inside data/ (checked here with real DVC), so `add --link`
    must not record data.dvc, and verify must not count the link."""
    import shutil
    import subprocess
    import sys

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path / "cache"))
    repository = tmp_path / "repo"
    (repository / "data" / "kept").mkdir(parents=True)
    (repository / "data" / "kept" / "a.txt").write_text("a\n")
    subprocess.run(["git", "init", "-q"], cwd=repository, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repository, check=True)
    source = _otb_folder(tmp_path / "otb-source")
    (repository / "data" / "otb").symlink_to(source, target_is_directory=True)
    subprocess.run([sys.executable, "-m", "dvc", "add", "-q", "data"], cwd=repository, check=True)
    recorded = manage.read_dvc_md5(repository / "data.dvc")
    assert recorded["nfiles"] == 1  # the link's files are not in DVC's record
    (repository / "data" / "otb").unlink()
    before = (repository / "data.dvc").read_text()
    report = manage.add(source, as_id="otb", root=repository / "data", link=True)
    assert report["dvc"]["recorded"] is False and "outside DVC" in report["dvc"]["reason"]
    assert (repository / "data.dvc").read_text() == before
    # our DVC md5 of what DVC saw (data/kept only) equals DVC's own: the link is rightly left out
    files = {f"kept/{k}": v for k, v in registry.manifest(repository / "data" / "kept")["files"].items()}
    assert manage.dvc_dir_md5(files) == recorded["md5"]
