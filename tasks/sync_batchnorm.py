"""Batch normalisation over the global batch of all DDP ranks, on CPU as well as on GPU.

Training runs under DDP (`torch.distributed`, one process per device). A plain `nn.BatchNorm1d/2d/3d` takes its batch
statistics over the rank's local batch only, so N processes with B/N samples each do not compute what one process
with the whole batch B computes: the normalised activations, the losses and the running statistics all differ. With
the statistics taken over the global batch, DDP over N ranks gives the same losses, step for step, as one process.

`torch.nn.SyncBatchNorm` does this, but only for CUDA tensors: on CPU it raises "SyncBatchNorm expected input tensor
to be on GPU", and the project's DDP test runs on CPU with the gloo backend. `GlobalBatchNorm` is the CPU-capable
equivalent: in training mode, with a process group of more than one rank, it reduces per-channel sums (and counts)
over all ranks with the differentiable `torch.distributed.nn.functional.all_reduce`, and normalises with the global
mean and biased variance; otherwise (eval mode, no process group, world size 1) it is exactly the plain BatchNorm.

Its parameters and buffers are those of `nn.BatchNorm*d` under the same names (weight, bias, running_mean,
running_var, num_batches_tracked), so a checkpoint of a converted net loads into the plain, unconverted net.

`convert_sync_batchnorm(net)` swaps every `nn.BatchNorm1d/2d/3d` of a net for `nn.SyncBatchNorm` (layers on CUDA) or
`GlobalBatchNorm` (anything else). Call it after moving the net to its device and before wrapping it in DDP (Fabric's
`setup`).

Gradients: the backward of the all_reduce sums the gradients of the statistics over the ranks, so with each rank's
loss the mean over its local batch and DDP averaging the parameter gradients over the ranks, the averaged gradient is
the gradient of the single-process loss over the global batch (equal local batch sizes) -- the semantics of
`nn.SyncBatchNorm` under DDP.
"""
from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.lazy import LazyModuleMixin

__all__ = ["GlobalBatchNorm", "convert_sync_batchnorm"]

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _all_reduce_sum(tensor: torch.Tensor, group) -> torch.Tensor:
    """Differentiable sum over the ranks of `group` (backward: the sum of the gradients over the ranks)."""
    from torch.distributed.nn.functional import all_reduce

    with warnings.catch_warnings():  # torch 2.13 marks it deprecated (FutureWarning on every call)
        warnings.filterwarnings("ignore", message=r".*torch\.distributed\.nn\.functional\.all_reduce is deprecated",
                                category=FutureWarning)
        return all_reduce(tensor, op=dist.ReduceOp.SUM, group=group)


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm over (B, C), (B, C, L), (B, C, H, W) or (B, C, D, H, W) whose training statistics cover the batch of
    every rank of the process group.

    Args: as `nn.BatchNorm*d` -- `num_features` C, `eps`, `momentum` (None: cumulative average over
    `num_batches_tracked`), `affine`, `track_running_stats`, `device`, `dtype`, keyword `bias` -- plus
    `process_group` (None: the default, whole world).

    Parameters/buffers, as `nn.BatchNorm*d`: weight, bias (C,) floating; running_mean, running_var (C,) floating;
    num_batches_tracked () int64.

    forward(input) -> output of input's shape and dtype. In training mode with `torch.distributed` initialised and
    more than one rank in the group: per-channel mean and biased variance over the batch and spatial dims of all ranks,
    computed in float32 (input and parameters cast up from float16/bfloat16; float64 stays float64), with two
    all_reduces -- [sum x, count] first, then sum (x - mean)^2 -- then normalise and apply the affine; running_mean
    gets the global mean, running_var the unbiased global variance (count - 1), with BatchNorm's momentum rule. Every
    rank of the group must call it (a collective). Otherwise it is `nn.BatchNorm*d.forward` (`F.batch_norm`).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None, *,
                 bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype,
                         bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if not 2 <= input.dim() <= 5:
            raise ValueError(f"expected a 2D to 5D input (B, C, ...), got {input.dim()}D input")

    def _group(self):
        return self.process_group if self.process_group is not None else dist.group.WORLD

    def _synced(self) -> bool:
        return (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size(self._group()) > 1)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self._synced():
            return super().forward(input)
        self._check_input_dim(input)
        if input.size(1) != self.num_features:
            raise ValueError(f"expected {self.num_features} channels in dim 1, got input of shape {tuple(input.shape)}")

        compute = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
        x = input.to(compute)
        dims = [0, *range(2, x.dim())]
        view = (1, -1) + (1,) * (x.dim() - 2)
        group = self._group()

        local_count = torch.full((1,), x.numel() // max(x.size(1), 1), dtype=compute, device=x.device)
        sums = _all_reduce_sum(torch.cat([x.sum(dim=dims), local_count]), group)
        count = sums[-1]
        n = int(count.item())
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got {n} over all ranks "
                             f"(input of shape {tuple(input.shape)} on this rank)")
        mean = sums[:-1] / count
        centred = x - mean.view(view)
        var = _all_reduce_sum((centred * centred).sum(dim=dims), group) / count  # biased

        out = centred * torch.rsqrt(var + self.eps).view(view)
        if self.weight is not None:
            out = out * self.weight.to(compute).view(view)
        if self.bias is not None:
            out = out + self.bias.to(compute).view(view)

        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                factor = 0.0 if self.momentum is None else self.momentum
                if self.num_batches_tracked is not None:
                    self.num_batches_tracked.add_(1)
                    if self.momentum is None:  # cumulative moving average
                        factor = 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * (n / (n - 1))
                self.running_mean.copy_((1 - factor) * self.running_mean + factor * mean.detach())
                self.running_var.copy_((1 - factor) * self.running_var + factor * unbiased)
        return out.to(input.dtype)


def _first_tensor(module: nn.Module) -> torch.Tensor | None:
    return next(iter([*module.parameters(recurse=False), *module.buffers(recurse=False)]), None)


def _convert(module: nn.Module, process_group, default_cuda: bool) -> nn.Module:
    output = module
    if isinstance(module, _BATCHNORMS):
        if isinstance(module, LazyModuleMixin) and module.has_uninitialized_params():
            raise ValueError(f"{type(module).__name__} is not initialised yet: run a batch through the net first")
        ref = _first_tensor(module)
        on_cuda = ref.device.type == "cuda" if ref is not None else default_cuda
        cls = nn.SyncBatchNorm if on_cuda else GlobalBatchNorm
        factory = {} if ref is None else {"device": ref.device, "dtype": ref.dtype}
        output = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                     process_group, bias=module.bias is not None, **factory)
        # The same Parameter / buffer objects (as torch's convert_sync_batchnorm): values, requires_grad and any
        # optimizer already holding them carry over.
        if module.affine:
            with torch.no_grad():
                output.weight = module.weight
                output.bias = module.bias
        output.running_mean = module.running_mean
        output.running_var = module.running_var
        output.num_batches_tracked = module.num_batches_tracked
        output.training = module.training
        if hasattr(module, "qconfig"):
            output.qconfig = module.qconfig
    for name, child in module.named_children():
        output.add_module(name, _convert(child, process_group, default_cuda))
    return output


def convert_sync_batchnorm(module: nn.Module, process_group=None) -> nn.Module:
    """Replace every `nn.BatchNorm1d/2d/3d` in `module` (recursively; layers already converted, i.e.
    `nn.SyncBatchNorm` / `GlobalBatchNorm`, are left alone) by `nn.SyncBatchNorm` if the layer's parameters/buffers
    are on CUDA, else by `GlobalBatchNorm`, sharing its weight, bias, running_mean, running_var and
    num_batches_tracked (same tensors: values, dtype, device and requires_grad kept) and copying num_features, eps,
    momentum, affine, track_running_stats and the training/eval mode. A layer with no parameters or buffers goes by
    whether `module` has any parameter on CUDA.

    Mirrors `nn.SyncBatchNorm.convert_sync_batchnorm`: returns `module` itself with its children replaced, or the new
    layer if `module` is itself a BatchNorm. `process_group`: the group the statistics are reduced over (None: the
    whole world). Call it after moving the net to its device and before wrapping it in DDP (Fabric's `setup`), and
    build the optimizer from the converted net's parameters (they are the same objects anyway).
    """
    default_cuda = any(p.device.type == "cuda" for p in module.parameters())
    return _convert(module, process_group, default_cuda)
