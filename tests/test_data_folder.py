"""ImageFolder: class folders of image files, decoded once into a cached array, as torchvision's;
the stratified validation split; the errors a user meets with real folders."""
import numpy as np
import pytest
from helpers import write_images

from tinyres.data import DataLoader, ImageFolder, folder, stratified_split


def test_classes_are_the_sorted_folder_names_and_images_decode_exactly(tmp_path):
    written = write_images(tmp_path, {"dog": 2, "cat": 3})
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    assert len(ds) == 5 and ds.targets.tolist() == [0, 0, 0, 1, 1]
    assert ds.samples[3] == (str(tmp_path / "dog" / "000.png"), 1)
    assert ds.data.shape == (5, 6, 5, 3) and ds.data.dtype == np.uint8
    np.testing.assert_array_equal(ds.data[3], written[("dog", 0)])          # PNG is lossless
    image, label = ds[3]
    assert image.shape == (3, 6, 5) and image.dtype == np.float32 and label == 1
    np.testing.assert_allclose(image, written[("dog", 0)].transpose(2, 0, 1) / 255, rtol=1e-6)
    images, labels = next(iter(DataLoader(ds, 4)))
    assert images.shape == (4, 3, 6, 5) and labels.numpy().tolist() == [0, 0, 0, 1]


def test_grayscale_images_become_rgb_as_torchvision(tmp_path):
    written = write_images(tmp_path, {"a": 1}, mode="L")
    ds = ImageFolder(tmp_path)
    assert ds.data.shape == (1, 6, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(ds.data[0, :, :, c], written[("a", 0)])


def test_the_second_open_reads_the_cache_and_a_change_rebuilds_it(tmp_path, monkeypatch):
    write_images(tmp_path, {"a": 2, "b": 2}, ext=".jpg")
    first = ImageFolder(tmp_path)
    assert (tmp_path / folder.CACHE_NAME).exists()

    def no_decoding(*args):
        raise AssertionError("decoded again")
    with monkeypatch.context() as m:
        m.setattr(folder, "_decode", no_decoding)
        again = ImageFolder(tmp_path)                   # from the cache, no JPEG read
        np.testing.assert_array_equal(again.data, first.data)
    write_images(tmp_path, {"b": 3}, ext=".jpg", seed=1)     # one more image, others rewritten
    changed = ImageFolder(tmp_path)
    assert len(changed) == 5


def test_a_read_only_folder_caches_elsewhere(tmp_path, monkeypatch):
    write_images(tmp_path / "data", {"a": 1})
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    elsewhere = tmp_path / "cache" / "x.npz"
    monkeypatch.setattr(folder, "_cache_paths", lambda root: [blocked / "c.npz", elsewhere])
    ImageFolder(tmp_path / "data")
    assert elsewhere.exists()


def test_size_resizes_mixed_sizes(tmp_path):
    write_images(tmp_path, {"a": 1}, size=(6, 5))
    write_images(tmp_path, {"b": 1}, size=(8, 8), seed=1)
    assert ImageFolder(tmp_path, size=(4, 4), cache=False).data.shape == (2, 4, 4, 3)


@pytest.mark.parametrize("case, match", [
    ("mixed-sizes", r"images of different sizes: .*a/000.png is 5x6, .*b/000.png is 8x8; pass size=\(H, W\)"),
    ("no-class-folders", r"has no class folders; expected .*/<class name>/<image files>"),
    ("empty-class", r"the class folder .*/b holds no image"),
    ("not-an-image", r"notes.txt is not an image file"),
    ("truncated", r"cannot decode .*a/000.jpg"),
])
def test_bad_folders_name_the_file_and_what_to_do(tmp_path, case, match):
    if case == "no-class-folders":
        (tmp_path / "loose.png").write_bytes(b"")
    else:
        write_images(tmp_path, {"a": 1}, ext=".jpg" if case == "truncated" else ".png")
    if case == "mixed-sizes":
        write_images(tmp_path, {"b": 1}, size=(8, 8))
    elif case == "empty-class":
        (tmp_path / "b").mkdir()
    elif case == "not-an-image":
        (tmp_path / "a" / "notes.txt").write_text("hello")
    elif case == "truncated":
        path = tmp_path / "a" / "000.jpg"
        path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=match):
        ImageFolder(tmp_path, cache=False)


def test_a_missing_folder_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ImageFolder: .*nowhere is not a folder"):
        ImageFolder(tmp_path / "nowhere")


# ---------------------------------------------------------------------- the validation split

def test_stratified_split_holds_out_each_class_in_proportion_and_is_seeded():
    targets = np.repeat(np.arange(4), [100, 50, 30, 20])
    kept, held = stratified_split(targets, 40, seed=3)
    assert len(held) == 40 and len(kept) == 160 and not set(kept) & set(held)
    assert np.bincount(targets[held]).tolist() == [20, 10, 6, 4]
    assert (stratified_split(targets, 40, seed=3)[1] == held).all()
    assert not (stratified_split(targets, 40, seed=4)[1] == held).all()


def test_stratified_split_rounds_to_the_exact_count():
    targets = np.repeat(np.arange(3), [5, 5, 5])
    assert len(stratified_split(targets, 7)[1]) == 7


@pytest.mark.parametrize("count", [0, 15, -1])
def test_stratified_split_rejects_counts_that_leave_nothing(count):
    with pytest.raises(ValueError, match="held-out count must be between 1 and 14"):
        stratified_split(np.zeros(15, dtype=int), count)
