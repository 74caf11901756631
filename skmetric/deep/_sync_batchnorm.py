"""Batch normalisation over the global batch of all ranks, on any device and backend.

``torch.nn.SyncBatchNorm`` runs on GPUs only (its kernels, ``batch_norm_stats`` and
friends, have no CPU implementation). :class:`SyncBatchNorm` here uses it on CUDA and, on
other devices (CPU with gloo), the same computation written with plain tensor operations:

- forward: each rank's count, mean and sum of squared deviations per channel are
  all-gathered and combined (Chan et al.'s pairwise formula, exact for unequal counts), so
  every rank normalises with the mean and (biased) variance of the concatenated batch and
  updates the running statistics with its unbiased variance, as one process would;
- backward: with x̂ = (x - μ)·σ⁻¹ and g the gradient of the output,
  dx = w·σ⁻¹·(g - Σg/N - x̂·Σ(g·x̂)/N), where the two sums run over the global batch (one
  all-reduce); the weight's and bias's gradients, Σ g·x̂ and Σ g, are the rank's own
  parts, summed over the ranks with the other gradients.

The result equals ``torch.nn.BatchNorm*d`` on the concatenated batch of the ranks.
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["SyncBatchNorm", "convert_sync_batchnorm"]

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _world_size():
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def _gather(tensor):
    """The ranks' ``tensor`` stacked in rank order (itself, alone, outside a group)."""
    if _world_size() == 1:
        return tensor[None]
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.stack(parts)


def _sum_over_ranks(tensor):
    if _world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


def _channel_view(stat, ndim):
    """A per-channel vector shaped to broadcast against an (N, C, ...) input."""
    return stat.reshape(1, -1, *([1] * (ndim - 2)))


class _SyncBatchNormFunction(torch.autograd.Function):
    """Normalisation with the statistics of the global batch; returns y and the global
    mean and unbiased variance (for the running statistics)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        dims = [d for d in range(x.ndim) if d != 1]
        count = torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device)
        local_mean = x.sum(dims) / count.clamp_min(1)  # zero on a rank without rows
        local_m2 = ((x - _channel_view(local_mean, x.ndim)) ** 2).sum(dims)
        stats = _gather(torch.cat([count, local_mean, local_m2]))
        counts, means, m2s = stats[:, :1], *stats[:, 1:].chunk(2, dim=1)
        n = counts.sum()
        if n.item() < 2:
            raise ValueError(
                "Batch normalisation needs more than 1 value per channel when training; "
                f"the global batch holds {int(n.item())}. Use a larger batch_size."
            )
        mean = (counts * means).sum(0) / n
        m2 = m2s.sum(0) + (counts * (means - mean) ** 2).sum(0)
        var = m2 / n
        invstd = torch.rsqrt(var + eps)
        x_hat = (x - _channel_view(mean, x.ndim)) * _channel_view(invstd, x.ndim)
        y = x_hat
        if weight is not None:
            y = y * _channel_view(weight, x.ndim) + _channel_view(bias, x.ndim)
        ctx.save_for_backward(x_hat, weight, invstd, n)
        unbiased = m2 / (n - 1)
        ctx.mark_non_differentiable(mean, unbiased)
        return y, mean, unbiased

    @staticmethod
    def backward(ctx, grad_y, _grad_mean, _grad_var):
        x_hat, weight, invstd, n = ctx.saved_tensors
        dims = [d for d in range(x_hat.ndim) if d != 1]
        sum_g = grad_y.sum(dims)
        sum_g_xhat = (grad_y * x_hat).sum(dims)
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            # Every rank runs this backward (same graph), so the all-reduce always pairs up.
            sums = _sum_over_ranks(torch.cat([sum_g, sum_g_xhat]))
            total_g, total_g_xhat = sums.chunk(2)
            scale = invstd if weight is None else invstd * weight
            grad_x = _channel_view(scale, x_hat.ndim) * (
                grad_y - _channel_view(total_g / n, x_hat.ndim)
                - x_hat * _channel_view(total_g_xhat / n, x_hat.ndim))
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = sum_g_xhat
        if weight is not None and ctx.needs_input_grad[2]:
            grad_bias = sum_g
        return grad_x, grad_weight, grad_bias, None


def sync_batch_norm(x, weight, bias, eps):
    """``(y, mean, unbiased_var)``: ``x`` of shape (N, C, ...) normalised with the
    per-channel mean and biased variance of the batch concatenated over the ranks
    (differentiable in ``x``, ``weight`` and ``bias``), and the statistics that update
    the running averages."""
    return _SyncBatchNormFunction.apply(x, weight, bias, eps)


class SyncBatchNorm(nn.SyncBatchNorm):
    """``torch.nn.SyncBatchNorm`` that also runs off GPUs (CPU with the gloo backend).

    Same parameters, buffers and state-dict keys as ``torch.nn.BatchNorm*d``; in training
    on several ranks it normalises with the statistics of the global batch, otherwise it
    is plain batch normalisation. On CUDA it is torch's own implementation.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep._sync_batchnorm import SyncBatchNorm
    >>> bn, ref = SyncBatchNorm(3), torch.nn.BatchNorm1d(3)
    >>> x = torch.randn(8, 3)
    >>> torch.allclose(bn(x), ref(x)) and torch.allclose(bn.running_var, ref.running_var)
    True
    """

    def forward(self, input):
        if input.device.type == "cuda" or not self.training:
            return super().forward(input)
        self._check_input_dim(input)
        factor = self._momentum_factor()
        if _world_size() == 1:  # torch's SyncBatchNorm refuses CPU input even here
            return F.batch_norm(
                input, self.running_mean if self.track_running_stats else None,
                self.running_var if self.track_running_stats else None,
                self.weight, self.bias, True, factor, self.eps)
        y, mean, unbiased_var = sync_batch_norm(input, self.weight, self.bias, self.eps)
        if self.track_running_stats:
            with torch.no_grad():
                self.running_mean.lerp_(mean, factor)
                self.running_var.lerp_(unbiased_var, factor)
        return y

    def _momentum_factor(self):
        """Counts the batch; the running averages' weight of this batch's statistics."""
        if not self.track_running_stats:
            return 0.0
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative average
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum


def convert_sync_batchnorm(module):
    """Replace every ``BatchNorm1d/2d/3d`` in ``module`` by :class:`SyncBatchNorm`.

    The new layers hold the same ``Parameter`` and buffer objects, so an optimiser built
    on the module's parameters (before or after) trains them; the training mode is kept.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    module : torch.nn.Module
        ``module`` itself, changed in place, or its replacement if it is a batch norm.
    """
    if isinstance(module, _BATCHNORMS) and not isinstance(module, SyncBatchNorm):
        new = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        new.running_mean, new.running_var = module.running_mean, module.running_var
        new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        new = convert_sync_batchnorm(child)
        if new is not child:
            module.add_module(name, new)
    return module
