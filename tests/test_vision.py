"""tinyres.vision as torchvision: per-sample transforms on PIL images, arrays and Tensors
(padding checked against torch.nn.functional.pad), the datasets' samples and attributes,
and torchvision's CIFAR recipe through tinyres.utils.data.DataLoader with workers."""
import numpy as np
import pytest
import torch
from PIL import Image

import tinyres
import tinyres.utils.data as trd
from tinyres.vision import datasets, transforms as T
from test_data_datasets import cifar_files, write_mnist

RNG = np.random.default_rng(0)


def rgb(h=6, w=5):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def pixels(img):
    if isinstance(img, Image.Image):
        return np.asarray(img)
    return img.array if isinstance(img, tinyres.Tensor) else img


def test_to_tensor_scales_uint8_and_moves_channels_first():
    array = rgb()
    for pic in (array, Image.fromarray(array)):
        out = T.ToTensor()(pic)
        assert isinstance(out, tinyres.Tensor) and out.shape == (3, 6, 5) and out.dtype == np.float32
        np.testing.assert_allclose(out.array, torch.from_numpy(array).permute(2, 0, 1).float().div(255).numpy())
    grey = T.ToTensor()(Image.fromarray(array[:, :, 0], mode="L"))
    assert grey.shape == (1, 6, 5)
    assert T.ToTensor()(np.ones((2, 2), np.float64)).dtype == np.float64        # not uint8: kept, not scaled
    assert T.PILToTensor()(Image.fromarray(array)).dtype == np.uint8
    back = T.ToPILImage()(T.ToTensor()(Image.fromarray(array)))
    np.testing.assert_array_equal(np.asarray(back), array)


def test_normalize_as_torch():
    x = RNG.random((2, 3, 4, 4)).astype(np.float32)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    expected = (torch.from_numpy(x) - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    np.testing.assert_allclose(T.Normalize(mean, std)(tinyres.tensor(x)).array, expected.numpy(), rtol=1e-6)
    t = tinyres.tensor(x[0])
    assert T.Normalize(mean, std, inplace=True)(t) is t
    np.testing.assert_allclose(t.array, expected[0].numpy(), rtol=1e-6)


@pytest.mark.parametrize("bad, error, match", [
    (np.zeros((3, 2, 2), np.float32), TypeError, "img should be Tensor Image"),
    (tinyres.zeros(3, 2, 2, dtype="int64"), TypeError, "Input tensor should be a float tensor"),
    (tinyres.zeros(2, 2), ValueError, "Expected tensor to be a tensor image of size"),
])
def test_normalize_errors(bad, error, match):
    with pytest.raises(error, match=match):
        T.Normalize([0.5] * 3, [0.5] * 3)(bad)
    with pytest.raises(ValueError, match="std evaluated to zero"):
        T.Normalize([0.5], [0.0])(tinyres.zeros(1, 2, 2))


@pytest.mark.parametrize("mode, torch_mode", [("constant", "constant"), ("edge", "replicate"),
                                              ("reflect", "reflect")])
@pytest.mark.parametrize("padding, torch_padding", [(2, (2, 2, 2, 2)), ((1, 2), (1, 1, 2, 2)),
                                                    ((1, 2, 3, 0), (1, 3, 2, 0))])
def test_pad_as_torch(mode, torch_mode, padding, torch_padding):
    x = RNG.random((3, 5, 6))
    expected = torch.nn.functional.pad(torch.from_numpy(x)[None], torch_padding, mode=torch_mode)[0].numpy()
    np.testing.assert_allclose(T.Pad(padding, padding_mode=mode)(tinyres.tensor(x)).array, expected)
    image = rgb(5, 6)                      # the same padding on PIL's (H, W, C) layout
    chw = torch.from_numpy(image).permute(2, 0, 1)[None].double()
    want = torch.nn.functional.pad(chw, torch_padding, mode=torch_mode)[0].permute(1, 2, 0).numpy()
    out = T.Pad(padding, padding_mode=mode)(Image.fromarray(image))
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(out), want.astype(np.uint8))


def test_random_crop_with_padding_is_a_window_of_the_padded_image_and_covers_every_shift():
    image = rgb(8, 8)
    padded = np.pad(image, [(2, 2), (2, 2), (0, 0)])
    windows = {tuple(padded[i:i + 8, j:j + 8].tobytes()): (i, j) for i in range(5) for j in range(5)}
    tinyres.manual_seed(0)
    seen = set()
    for _ in range(400):
        out = T.RandomCrop(8, padding=2)(Image.fromarray(image))
        seen.add(windows[tuple(np.asarray(out).tobytes())])
    assert seen == {(i, j) for i in range(5) for j in range(5)}
    t = T.RandomCrop((3, 4))(tinyres.tensor(image.transpose(2, 0, 1)))
    assert isinstance(t, tinyres.Tensor) and t.shape == (3, 3, 4)
    assert T.RandomCrop(10, pad_if_needed=True)(image).shape == (10, 10, 3)
    with pytest.raises(ValueError, match=r"Required crop size \(9, 9\) is larger than input image size \(8, 8\)"):
        T.RandomCrop(9)(image)


def test_random_transforms_repeat_under_the_seed():
    image = Image.fromarray(rgb(6, 6))

    def run():
        tinyres.manual_seed(3)
        augment = T.Compose([T.RandomCrop(6, padding=1), T.RandomHorizontalFlip()])
        return [pixels(augment(image)).copy() for _ in range(5)]
    assert all((a == b).all() for a, b in zip(run(), run()))


def test_flips_and_center_crop():
    image = rgb(4, 6)
    np.testing.assert_array_equal(pixels(T.RandomHorizontalFlip(p=1.0)(Image.fromarray(image))), image[:, ::-1])
    np.testing.assert_array_equal(pixels(T.RandomVerticalFlip(p=1.0)(image)), image[::-1])
    assert T.RandomHorizontalFlip(p=0.0)(image) is image
    chw = tinyres.tensor(image.transpose(2, 0, 1))
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(chw).array, image.transpose(2, 0, 1)[..., ::-1])
    tinyres.manual_seed(0)
    flips = sum(T.RandomHorizontalFlip()(image) is not image for _ in range(1000))
    assert 430 < flips < 570
    np.testing.assert_array_equal(pixels(T.CenterCrop(2)(image)), image[1:3, 2:4])
    assert pixels(T.CenterCrop((6, 8))(image)).shape == (6, 8, 3)
    with pytest.raises(TypeError, match="img should be a PIL Image, a NumPy array or a Tensor"):
        T.RandomCrop(2)([[1, 2]])


@pytest.fixture
def cifar_root(tmp_path):
    files, content = cifar_files(tinyres.data.CIFAR10, n=8)
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
    return tmp_path, content


def test_cifar10_gives_pil_images_and_torchvisions_attributes(cifar_root):
    root, content = cifar_root
    train = datasets.CIFAR10(root, train=True)
    assert len(train) == 40 and train.data.shape == (40, 32, 32, 3) and train.targets[:8] == content["data_batch_1"][1]
    image, label = train[1]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (32, 32)
    np.testing.assert_array_equal(np.asarray(image), content["data_batch_1"][0][1].reshape(3, 32, 32).transpose(1, 2, 0))
    assert label == content["data_batch_1"][1][1] and train.class_to_idx["class3"] == 3
    test = datasets.CIFAR10(root, train=False, transform=T.ToTensor(), target_transform=lambda y: y + 100)
    x, y = test[0]
    assert x.shape == (3, 32, 32) and y == content["test_batch"][1][0] + 100
    assert "Number of datapoints: 8" in repr(test) and "Split: Test" in repr(test)


def test_mnist_gives_grey_pil_images(tmp_path):
    images, labels = RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8), RNG.integers(0, 10, 5)
    write_mnist(tmp_path / "MNIST" / "raw", False, {"train": (images, labels), "t10k": (images, labels)})
    ds = datasets.MNIST(str(tmp_path), train=True)
    image, label = ds[2]
    assert image.mode == "L" and label == labels[2]
    np.testing.assert_array_equal(np.asarray(image), images[2])
    assert isinstance(ds.targets, tinyres.Tensor) and ds.data.shape == (5, 28, 28)


def test_torchvisions_cifar_recipe_runs_through_the_dataloader_with_workers(cifar_root):
    root, _ = cifar_root
    recipe = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])
    train = datasets.CIFAR10(root=root, train=True, download=False, transform=recipe)
    loader = trd.DataLoader(train, batch_size=16, shuffle=True, num_workers=2)
    batches = list(loader)
    assert [tuple(x.shape) for x, _ in batches] == [(16, 3, 32, 32), (16, 3, 32, 32), (8, 3, 32, 32)]
    assert all(y.dtype == np.int64 for _, y in batches)
    model = tinyres.vision.models.resnet18(num_classes=10)
    assert model(batches[-1][0][:2]).shape == (2, 10)


def test_vision_models_take_torchvisions_weights_argument():
    assert isinstance(tinyres.vision.models.resnet18(weights=None, num_classes=3), tinyres.vision.models.ResNet)
    with pytest.raises(ValueError, match="tinyres downloads nothing"):
        tinyres.vision.models.resnet50(weights="IMAGENET1K_V2")
