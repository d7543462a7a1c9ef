"""Weight initialisation shared by the systems' networks."""
from __future__ import annotations

from torch import nn


def normal_init(module: nn.Module, std: float = 0.02) -> None:
    """pix2pix's `init_weights(net, "normal", 0.02)` (the GAN papers' "N(0, 0.02) init"), in place on every
    submodule: convolution, transposed convolution and linear weights N(0, std²), BatchNorm weights N(1, std²), their
    biases 0. Recurrent layers keep PyTorch's defaults."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
