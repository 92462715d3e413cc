#!/usr/bin/env python3
"""Makes the small real-framework fixtures under Tests/KilnTests/Fixtures (run once; CI needs none
of these frameworks). Run it with Scripts/make-fixtures.sh, which creates the virtual environment.

torch_cnn.safetensors  a PyTorch CNN (conv, batch norm, residual add, max pool, linear) state dict
torch_cnn_x.npy        its input batch, NCHW float32
torch_cnn_y.npy        PyTorch's own outputs (eval mode) for that batch
"""
import pathlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "KilnTests" / "Fixtures"


class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(y + self.bn2(self.conv2(y)))
        return self.fc(torch.flatten(self.pool(y), 1))


def main():
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    model = ResidualCNN()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    model.eval()
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        y = model(x)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(OUT / "torch_cnn.safetensors"))
    np.save(OUT / "torch_cnn_x.npy", x.numpy().astype(np.float32))
    np.save(OUT / "torch_cnn_y.npy", y.numpy().astype(np.float32))
    print("wrote", sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
