"""PyTorch weights for tinyres models, and tinyres weights for PyTorch.

The models' parameter names are torchvision's, so a torchvision ``state_dict`` loads as
it is::

    model = tinyres.models.resnet18()
    load_torch_state_dict(model, "resnet18.pth")     # or an .npz from export_torch_state_dict
    save_torch_state_dict(model, "finetuned.pth")    # back to PyTorch

The work is done in ``tinyres.utils`` (see there for the details).
"""
from ..utils import (export_torch_state_dict, load_torch_state_dict, numpy_state_dict,  # noqa: F401
                     save_torch_state_dict, to_torch_state_dict)
