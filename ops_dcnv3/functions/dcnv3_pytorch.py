"""Pure-PyTorch DCNv3: the same result as the compiled op, via grid_sample."""
import torch
import torch.nn.functional as F

from .checks import autocast_inputs, check_args


def _next_pow2(n: int) -> int:
    """The least power of two >= n (n a size; a traced size is specialised)."""
    return 1 << (int(n) - 1).bit_length()


def dcnv3_core_pytorch(input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                       kernel_h: int, kernel_w: int, stride_h: int, stride_w: int,
                       pad_h: int, pad_w: int, dilation_h: int, dilation_w: int,
                       group: int, group_channels: int,
                       offset_scale: float) -> torch.Tensor:
    """DCNv3 core op in plain PyTorch, channels-last.

    ``out[n, ho, wo, g*D + d] = sum_p mask_p * bilinear(input[n, :, :, g*D + d],
    y_p, x_p)`` over the ``P = kernel_h * kernel_w`` sampling points of group
    ``g``, with ``x_p = cx + (gx(i) + offset_x) * offset_scale`` (likewise
    ``y_p``) and point ``p = i * kernel_h + j`` (x index outer).

    Special values, as in the compiled op: a point outside the image
    (``y <= -1``, ``y >= H``, ``x <= -1`` or ``x >= W``, which includes
    locations that are NaN or overflow to infinity) touches no pixel and adds
    exactly 0, whatever its mask; corners outside the image add nothing, so a
    mask of ±inf gives ±inf (or NaN where the bilinear sum is 0) and not 0·inf.

    Args:
        input: (N, H, W, group * group_channels) floating tensor.
        offset: (N, Ho, Wo, group * P * 2), the (x, y) offsets of each point.
        mask: (N, Ho, Wo, group * P), the weight of each point.
        kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
            dilation_w: the kernel geometry (ints, pads may be 0).
        group, group_channels: the groups and their channel count.
        offset_scale: finite float scaling the kernel grid and the offsets.

    Returns:
        (N, Ho, Wo, group * group_channels) in the input's dtype (the
        autocast dtype under ``torch.autocast``). Sampling runs in float64
        for float64 inputs and in float32 otherwise.
    """
    input, offset, mask = autocast_inputs(input, offset, mask)
    N, H, W, Ho, Wo, G, D, P = check_args(
        input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h,
        pad_w, dilation_h, dilation_w, group, group_channels, offset_scale)
    out_dtype = input.dtype
    dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
    dev = input.device

    # Sampling locations in input pixel coordinates, (N, Ho, Wo, G, P). The
    # integer geometry is exact in int64 (pads and dilations up to 2**31).
    half_h = (dilation_h * (kernel_h - 1)) // 2
    half_w = (dilation_w * (kernel_w - 1)) // 2
    cy = (torch.arange(Ho, device=dev) * stride_h + (half_h - pad_h)).to(dtype)
    cx = (torch.arange(Wo, device=dev) * stride_w + (half_w - pad_w)).to(dtype)
    # Point p = i * kernel_h + j: the x index i is outer, the y index j inner.
    gx = (torch.arange(kernel_w, device=dev) * dilation_w - half_w
          ).to(dtype).repeat_interleave(kernel_h)
    gy = (torch.arange(kernel_h, device=dev) * dilation_h - half_h
          ).to(dtype).repeat(kernel_w)
    off = offset.to(dtype).reshape(N, Ho, Wo, G, P, 2)
    x = cx.view(1, 1, Wo, 1, 1) + (gx + off[..., 0]) * offset_scale
    y = cy.view(1, Ho, 1, 1, 1) + (gy + off[..., 1]) * offset_scale

    # Points outside the image (NaN fails every comparison) are moved to
    # (-2, -2), where grid_sample reads no pixel, and weighted 0.
    inside = (y > -1) & (x > -1) & (y < H) & (x < W)
    x = torch.where(inside, x, -2.0)
    y = torch.where(inside, y, -2.0)
    weight = torch.where(inside, mask.to(dtype).reshape(N, Ho, Wo, G, P), 0.0)

    # The image is zero-padded to power-of-two sizes, so that the round trip
    # through grid_sample's normalised coordinates is exact for integer
    # locations: both paths then take the same four corners there (and the
    # same one-sided derivative, e.g. at zero offsets). The padding reads as
    # zeros, like the outside.
    Hp, Wp = _next_pow2(H), _next_pow2(W)
    # grid_sample(align_corners=False) puts pixel k's centre at (2k + 1) / size - 1.
    grid = torch.stack(((2 * x + 1) / Wp - 1, (2 * y + 1) / Hp - 1), dim=-1)
    grid = grid.permute(0, 3, 1, 2, 4, 5).reshape(N * G, Ho * Wo, P, 2)
    value = input.to(dtype).reshape(N, H, W, G, D).permute(0, 3, 4, 1, 2)
    if (Hp, Wp) != (H, W):
        value = F.pad(value, (0, Wp - W, 0, Hp - H))
    value = value.reshape(N * G, D, Hp, Wp)
    sampled = F.grid_sample(value, grid, mode='bilinear', padding_mode='zeros',
                            align_corners=False)  # (N*G, D, Ho*Wo, P)
    weight = weight.permute(0, 3, 1, 2, 4).reshape(N * G, 1, Ho * Wo, P)
    out = (sampled * weight).sum(-1)
    out = out.view(N, G, D, Ho, Wo).permute(0, 3, 4, 1, 2).reshape(N, Ho, Wo, G * D)
    return out.to(out_dtype)
