"""Pure-PyTorch DCNv3: the same result as the compiled op, via grid_sample."""
import torch
import torch.nn.functional as F

from .checks import autocast_inputs, check_args


def dcnv3_core_pytorch(input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                       kernel_h: int, kernel_w: int, stride_h: int, stride_w: int,
                       pad_h: int, pad_w: int, dilation_h: int, dilation_w: int,
                       group: int, group_channels: int,
                       offset_scale: float) -> torch.Tensor:
    """DCNv3 core op in plain PyTorch (channels-last, see SPEC-dcnv3.md).

    Sampling runs in float64 for float64 inputs and in float32 otherwise, so
    float16/bfloat16 inputs work on every device; the result has the input's
    dtype (the autocast dtype under ``torch.autocast``).
    """
    input, offset, mask = autocast_inputs(input, offset, mask)
    N, H, W, Ho, Wo, G, D, P = check_args(
        input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h,
        pad_w, dilation_h, dilation_w, group, group_channels, offset_scale)
    out_dtype = input.dtype
    dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
    dev = input.device

    # Sampling locations in input pixel coordinates, (N, Ho, Wo, G, P).
    half_h = (dilation_h * (kernel_h - 1)) // 2
    half_w = (dilation_w * (kernel_w - 1)) // 2
    cy = torch.arange(Ho, device=dev, dtype=dtype) * stride_h - pad_h + half_h
    cx = torch.arange(Wo, device=dev, dtype=dtype) * stride_w - pad_w + half_w
    # Point p = i * kernel_h + j: the x index i is outer, the y index j inner.
    gx = (torch.arange(kernel_w, device=dev, dtype=dtype) * dilation_w - half_w
          ).repeat_interleave(kernel_h)
    gy = (torch.arange(kernel_h, device=dev, dtype=dtype) * dilation_h - half_h
          ).repeat(kernel_w)
    off = offset.to(dtype).reshape(N, Ho, Wo, G, P, 2)
    x = cx.view(1, 1, Wo, 1, 1) + (gx + off[..., 0]) * offset_scale
    y = cy.view(1, Ho, 1, 1, 1) + (gy + off[..., 1]) * offset_scale

    # grid_sample(align_corners=False) puts pixel k's centre at (2k + 1) / size - 1.
    grid = torch.stack(((2 * x + 1) / W - 1, (2 * y + 1) / H - 1), dim=-1)
    grid = grid.permute(0, 3, 1, 2, 4, 5).reshape(N * G, Ho * Wo, P, 2)
    value = input.to(dtype).reshape(N, H, W, G, D).permute(0, 3, 4, 1, 2)
    value = value.reshape(N * G, D, H, W)
    sampled = F.grid_sample(value, grid, mode='bilinear', padding_mode='zeros',
                            align_corners=False)  # (N*G, D, Ho*Wo, P)
    weight = mask.to(dtype).reshape(N, Ho * Wo, G, P).transpose(1, 2)
    out = (sampled * weight.reshape(N * G, 1, Ho * Wo, P)).sum(-1)
    out = out.view(N, G, D, Ho, Wo).permute(0, 3, 4, 1, 2).reshape(N, Ho, Wo, G * D)
    return out.to(out_dtype)
