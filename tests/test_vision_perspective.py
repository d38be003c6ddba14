"""F.perspective and F.elastic_transform against torch's grid_sample on torchvision's grids
(re-implemented here), and PIL's Image.transform(PERSPECTIVE)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinyres
import tinyres.vision.transforms.functional as VF

RNG = np.random.default_rng(0)
START = [[0, 0], [11, 0], [11, 9], [0, 9]]
END = [[1, 2], [10, 0], [11, 8], [2, 9]]


def torch_coeffs(startpoints, endpoints):
    a = torch.zeros(8, 8, dtype=torch.float64)
    for i, (p1, p2) in enumerate(zip(endpoints, startpoints)):
        a[2 * i] = torch.tensor([p1[0], p1[1], 1, 0, 0, 0, -p2[0] * p1[0], -p2[0] * p1[1]])
        a[2 * i + 1] = torch.tensor([0, 0, 0, p1[0], p1[1], 1, -p2[1] * p1[0], -p2[1] * p1[1]])
    b = torch.tensor(startpoints, dtype=torch.float64).view(8)
    return torch.linalg.lstsq(a, b, driver="gels").solution.to(torch.float32).tolist()


def sample(x, grid, mode, fill):
    out = TF.grid_sample(torch.cat((x, torch.ones_like(x[:, :1])), 1), grid.expand(x.shape[0], -1, -1, -1),
                         mode=mode, padding_mode="zeros", align_corners=False)
    img, mask = out[:, :-1], out[:, -1:].expand_as(out[:, :-1])
    fill_img = torch.tensor(fill, dtype=x.dtype).view(1, -1, 1, 1).expand_as(img)
    return torch.where(mask < 0.5, fill_img, img) if mode == "nearest" else img * mask + (1 - mask) * fill_img


def test_perspective_coeffs_match_torch_lstsq():
    np.testing.assert_allclose(VF._get_perspective_coeffs(START, END), torch_coeffs(START, END), rtol=1e-6)
    with pytest.raises(ValueError, match="exactly four corners"):
        VF._get_perspective_coeffs(START[:3], END)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_perspective_is_grid_sample_of_torchvisions_grid(mode):
    x = RNG.random((1, 3, 10, 12))
    c = torch_coeffs(START, END)
    oh, ow = 10, 12
    t1 = torch.tensor([[c[0], c[1], c[2]], [c[3], c[4], c[5]]], dtype=torch.float64)
    t2 = torch.tensor([[c[6], c[7], 1.0], [c[6], c[7], 1.0]], dtype=torch.float64)
    base = torch.empty(1, oh, ow, 3, dtype=torch.float64)
    base[..., 0] = torch.linspace(0.5, ow - 0.5, ow)
    base[..., 1] = torch.linspace(0.5, oh - 0.5, oh).unsqueeze(-1)
    base[..., 2] = 1
    g1 = base.view(1, -1, 3).bmm((t1.T / torch.tensor([0.5 * ow, 0.5 * oh], dtype=torch.float64))[None])
    g2 = base.view(1, -1, 3).bmm(t2.T[None])
    grid = (g1 / g2 - 1.0).view(1, oh, ow, 2)
    out = VF.perspective(tinyres.tensor(x), START, END, VF.InterpolationMode(mode), fill=[0.25] * 3)
    np.testing.assert_allclose(out.numpy(), sample(torch.from_numpy(x), grid, mode, [0.25] * 3).numpy(),
                               rtol=1e-9, atol=1e-9)


def test_perspective_pil_is_image_transform():
    from PIL import Image
    img = Image.fromarray((RNG.random((10, 12, 3)) * 255).astype(np.uint8))
    want = img.transform(img.size, Image.PERSPECTIVE, torch_coeffs(START, END), Image.BILINEAR, fillcolor=(3, 3, 3))
    got = VF.perspective(img, START, END, fill=3)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_elastic_transform_is_grid_sample_of_identity_plus_displacement(mode):
    x = RNG.random((2, 3, 6, 7))
    d = (RNG.random((1, 6, 7, 2)) - 0.5) * 0.4
    ident = torch.stack(torch.meshgrid([torch.linspace((-s + 1) / s, (s - 1) / s, s) for s in (6, 7)],
                                       indexing="ij")[::-1], -1)[None]
    grid = ident.double() + torch.from_numpy(d)
    out = VF.elastic_transform(tinyres.tensor(x), tinyres.tensor(d), VF.InterpolationMode(mode), fill=[0.5])
    # the float32 identity grid can differ from torch.linspace's by one float32 ulp
    np.testing.assert_allclose(out.numpy(), sample(torch.from_numpy(x), grid, mode, [0.5] * 3).numpy(),
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="displacement shape"):
        VF.elastic_transform(tinyres.tensor(x), tinyres.tensor(d[:, :5]))
    with pytest.raises(TypeError, match="displacement should be a Tensor"):
        VF.elastic_transform(tinyres.tensor(x), d)


def test_random_perspective_and_elastic_transform_classes():
    import tinyres.vision.transforms as T
    x = tinyres.tensor(RNG.random((3, 20, 24)).astype(np.float32))
    start, end = T.RandomPerspective.get_params(24, 20, 0.5)
    assert start == [[0, 0], [23, 0], [23, 19], [0, 19]]
    assert all(0 <= p[0] < 24 and 0 <= p[1] < 20 for p in end)
    assert T.RandomPerspective(p=1.0)(x).shape == (3, 20, 24)
    assert T.RandomPerspective(p=0.0)(x) is x
    d = T.ElasticTransform.get_params([5.0, 5.0], [1.0, 1.0], [20, 24])
    assert d.shape == (1, 20, 24, 2)
    assert T.ElasticTransform(alpha=5.0, sigma=1.0)(x).shape == (3, 20, 24)
    with pytest.raises(TypeError, match="alpha should be float"):
        T.ElasticTransform(alpha=5)
    with pytest.raises(ValueError, match="length should be 2"):
        T.ElasticTransform(sigma=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="fill should be int or float"):
        T.ElasticTransform(fill="x")
