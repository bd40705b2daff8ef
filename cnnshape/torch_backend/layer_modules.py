"""Small torch modules for leaf layers that torch.nn lacks (a layer class names one with
``torch_module = "<ClassName>"``); plain torch only, no cnnshape imports, so ``export``
can copy a class's source into the exported file."""

import torch  # noqa: F401
from torch import nn  # noqa: F401
