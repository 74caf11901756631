"""Mixed precision of MetricEmbedder's trunk: ``precision='bf16'`` runs it under autocast.

The trunk's forward pass runs under ``torch.autocast`` on the device's type (matrix
products and convolutions in bfloat16, reductions and normalisations in float32); its
parameters, their gradients and the optimizer's state stay float32. The embeddings are
cast back to float32 before the loss: distances, margins and log-sum-exps of the metric
losses are computed in full precision (bfloat16 keeps 8 bits of mantissa, too few to
compare distances that differ by a margin of 0.1 %). bfloat16 has float32's range, so
no loss scaling is needed (float16 would need a gradient scaler, which is not offered).
"""

import contextlib

import torch

#: ``precision`` option -> autocast dtype (None: no autocast).
PRECISIONS = {"32": None, "bf16": torch.bfloat16}


def check_precision(precision):
    """Return the autocast dtype of a ``precision`` option, or raise a clear ValueError."""
    key = str(precision)
    if key not in PRECISIONS:
        hint = (" float16 needs loss scaling, which MetricEmbedder does not offer; use "
                "'bf16' (same speed on recent GPUs, no scaling)." if "16" in key else "")
        raise ValueError(
            f"precision must be one of {sorted(PRECISIONS)}; got {precision!r}.{hint}"
        )
    return PRECISIONS[key]


def autocast(precision, module, device=None):
    """The autocast context of ``precision`` for ``module`` (a no-op for '32').

    On ``device``'s type, or, when it is None (skorch then leaves the module where it
    is), on the type of the device of the module's first parameter.
    """
    dtype = check_precision(precision)
    if dtype is None:
        return contextlib.nullcontext()
    if device is None:
        first = next(module.parameters(), None)
        device = "cpu" if first is None else first.device
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def full_precision(embeddings):
    """Embeddings as float32 (autocast may return bfloat16), before the loss sees them."""
    if embeddings.is_floating_point() and embeddings.dtype != torch.float32 \
            and embeddings.dtype != torch.float64:
        return embeddings.float()
    return embeddings
