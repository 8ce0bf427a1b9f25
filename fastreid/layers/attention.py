"""Attention blocks used inside backbones: squeeze-and-excitation, non-local and split attention."""
import torch
import torch.nn.functional as F
from torch import nn

from .batch_norm import get_norm
from .memory_format import memory_format_of

__all__ = ["SELayer", "NonLocal", "SplAtConv2d"]


class SELayer(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): channel gates from globally pooled features.

    Args:
        channels: C of the B×C×H×W input.
        reduction: ratio of C to the hidden width of the gate MLP.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
        return x * gate[:, :, None, None]


class NonLocal(nn.Module):
    """Embedded dot-product non-local block (Wang et al. 2018) with a residual connection.

    The output projection's norm starts at zero, so a freshly inserted block is the identity.

    Args:
        in_channels: C of the B×C×H×W input.
        norm: norm name for the output projection (see :func:`get_norm`).
        inter_channels: inner embedding width; 0 uses ``in_channels // 2`` (Wang et al.). fast-reid and the
            AGW code build their blocks with width 1 (``reduc_ratio // reduc_ratio``), which their checkpoints
            need.
    """

    def __init__(self, in_channels: int, norm: str = "BN", inter_channels: int = 0) -> None:
        super().__init__()
        inter = inter_channels if inter_channels > 0 else in_channels // 2
        self.g = nn.Conv2d(in_channels, inter, 1)
        self.theta = nn.Conv2d(in_channels, inter, 1)
        self.phi = nn.Conv2d(in_channels, inter, 1)
        self.W = nn.Sequential(nn.Conv2d(inter, in_channels, 1), get_norm(norm, in_channels))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        g_x = self.g(x).flatten(2).transpose(1, 2)  # B×N×C'
        theta_x = self.theta(x).flatten(2).transpose(1, 2)  # B×N×C'
        phi_x = self.phi(x).flatten(2)  # B×C'×N
        affinity = torch.bmm(theta_x, phi_x) / (h * w)  # B×N×N, dot-product form normalised by N
        y = torch.bmm(affinity, g_x)  # B×N×C', i.e. B×h×w×C' in memory
        # W's convolution returns the layout of its input, so y gets x's: the permuted view is channels-last also
        # for C' = 1 (where reshape would give NCHW strides), the copy NCHW also for C' > 1 (a view would not).
        if memory_format_of(x) == torch.channels_last:
            y = y.view(b, h, w, -1).permute(0, 3, 1, 2)
        else:
            y = y.transpose(1, 2).reshape(b, -1, h, w).contiguous()
        return self.W(y) + x


class SplAtConv2d(nn.Module):
    """Split-attention convolution of ResNeSt (Zhang et al. 2020).

    A grouped convolution produces ``radix`` splits per cardinal group; attention weights from their pooled
    sum (softmax over the radix, sigmoid when radix is 1) recombine them. Sub-module names match the
    published ResNeSt weights.

    Args:
        in_channels: input channels.
        channels: output channels.
        kernel_size, stride, padding, dilation: of the grouped convolution.
        groups: cardinality.
        radix: number of splits per group.
        reduction_factor: ratio of ``in_channels * radix`` to the attention MLP width (at least 32).
        norm: norm name (see :func:`get_norm`).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        groups: int = 1,
        radix: int = 2,
        reduction_factor: int = 4,
        norm: str = "BN",
    ) -> None:
        super().__init__()
        inter_channels = max(in_channels * radix // reduction_factor, 32)
        self.radix = radix
        self.cardinality = groups
        self.channels = channels
        self.conv = nn.Conv2d(
            in_channels, channels * radix, kernel_size, stride, padding, dilation, groups=groups * radix, bias=False
        )
        self.bn0 = get_norm(norm, channels * radix)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(channels, inter_channels, 1, groups=groups)
        self.bn1 = get_norm(norm, inter_channels)
        self.fc2 = nn.Conv2d(inter_channels, channels * radix, 1, groups=groups)

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        b = x.size(0)
        if self.radix == 1:
            return torch.sigmoid(x)
        # B×(card·radix·c) → softmax over the radix axis within each cardinal group.
        x = x.view(b, self.cardinality, self.radix, -1).transpose(1, 2)
        return F.softmax(x, dim=1).reshape(b, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn0(self.conv(x)))
        b = x.size(0)
        splits = torch.split(x, self.channels, dim=1) if self.radix > 1 else (x,)
        gap = F.adaptive_avg_pool2d(sum(splits), 1)
        gap = self.relu(self.bn1(self.fc1(gap)))
        atten = self._attention(self.fc2(gap)).view(b, -1, 1, 1)
        if self.radix == 1:
            return atten * x
        attens = torch.split(atten, self.channels, dim=1)
        return sum(a * s for a, s in zip(attens, splits))
