"""tinyres.recipes: datasets by name (named fields), a run's config and what it builds, the
checks that say a dataset does not fit a checkpoint -- what the CLI and the examples share."""
import numpy as np
import pytest

import tinyres
from tinyres import optim, recipes


def test_every_dataset_recipe_has_named_fields():
    for name, recipe in recipes.DATASETS.items():
        assert recipe.channels in (1, 3) and recipe.augment in ("none", "crop", "crop+flip"), name
        assert (recipe.image_size is None) == (recipe.mean is None) == (recipe.std is None), name
    assert recipes.dataset_recipe("cifar10").image_size == 32
    with pytest.raises(tinyres.UserError, match="unknown dataset 'imagenet'; valid names: bundled"):
        recipes.dataset_recipe("imagenet")


def test_a_config_builds_its_model_and_transforms():
    data = recipes.open_dataset("bundled", True, subset=10)
    assert len(data) == 10 and len(set(data.targets.tolist())) > 1          # spread over the classes
    config = recipes.make_config("resnet8", "bundled", data.classes)
    model = recipes.build_model(config)
    assert model.arch == "resnet8" and model.fc.out_features == 10 and model.in_channels == 1
    images = np.zeros((2, 1, 28, 28), dtype=np.float32)
    out = recipes.build_transform(config, train=False)(images)
    np.testing.assert_allclose(out, (0 - config["mean"][0]) / config["std"][0], rtol=1e-6)


@pytest.mark.parametrize("schedule, per, kind", [("step", "epoch", optim.lr_scheduler.MultiStepLR),
                                                 ("onecycle", "batch", optim.lr_scheduler.OneCycleLR)])
def test_build_optimizer_follows_the_settings(schedule, per, kind):
    settings = dict(lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True, epochs=8, schedule=schedule)
    model = tinyres.nn.Linear(3, 2)
    optimizer, scheduler, step = recipes.build_optimizer(settings, model.parameters(), steps_per_epoch=5)
    assert isinstance(scheduler, kind) and step == per and optimizer.param_groups[0]["nesterov"]
    if schedule == "step":
        assert sorted(scheduler.milestones) == [4, 6]         # lr / 10 at 50% and 75% of 8 epochs


def test_a_dataset_that_does_not_fit_the_checkpoint_is_a_user_error():
    data = recipes.open_dataset("bundled", False, subset=5)
    config = recipes.make_config("resnet8", "cifar10", [str(i) for i in range(10)])
    with pytest.raises(tinyres.UserError, match="was trained on cifar10 .*cannot be evaluated on bundled"):
        recipes.check_fits(config, "bundled", data, "run.npz")
    recipes.check_fits(recipes.make_config("resnet8", "bundled", data.classes), "bundled", data, "run.npz")


def test_read_image_reads_npy_and_says_what_is_missing(tmp_path):
    np.save(tmp_path / "x.npy", np.full((1, 4, 4), 255, dtype=np.uint8))
    assert recipes.read_image(tmp_path / "x.npy", 1, 4).max() == 1.0
    with pytest.raises(tinyres.UserError, match="does not exist"):
        recipes.read_image(tmp_path / "nothing.png", 1, 4)
