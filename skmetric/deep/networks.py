"""Trunk networks for :class:`~skmetric.deep.MetricEmbedder`: an MLP and a small CNN.

Both end in a linear embedding head of ``embedding_dim`` outputs (no activation), so that the
embedding can take any direction before an optional L2 normalisation. Any ``torch.nn.Module``
mapping a batch to a 2-D tensor of embeddings can replace them.
"""

from torch import nn


class MLP(nn.Module):
    """Multi-layer perceptron for tabular data: Linear-ReLU(-Dropout) blocks, linear head.

    Inputs of more than two dimensions (e.g. images) are flattened first.

    Parameters
    ----------
    in_features : int
        Number of input features (after flattening).
    hidden : tuple of int, default=(256,)
        Widths of the hidden layers; ``()`` gives a linear embedding.
    embedding_dim : int, default=64
        Size of the embedding.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.networks import MLP
    >>> MLP(64, hidden=(32,), embedding_dim=8)(torch.zeros(5, 64)).shape
    torch.Size([5, 8])
    """

    def __init__(self, in_features, hidden=(256,), embedding_dim=64, dropout=0.0):
        super().__init__()
        layers = [nn.Flatten()]
        width = in_features
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = units
        layers.append(nn.Linear(width, embedding_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class SmallCNN(nn.Module):
    """A small convolutional network for images of shape (channels, height, width).

    Blocks of 3x3 convolution, batch normalisation and ReLU; the first ``n_pool`` blocks
    end with a 2x2 max-pooling. Global average pooling makes it work on any image size of at
    least ``2 ** n_pool`` pixels a side (8x8 digits, 28x28 Fashion-MNIST, 32x32 CIFAR), and a
    linear head gives the embedding.

    Parameters
    ----------
    in_channels : int, default=1
        1 for grey-scale images, 3 for colour.
    embedding_dim : int, default=64
        Size of the embedding.
    channels : tuple of int, default=(32, 64, 128)
        Output channels of the convolutional blocks.
    n_pool : int, default=2
        How many of the first blocks halve the spatial size.
    dropout : float, default=0.0
        Dropout probability before the head.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.networks import SmallCNN
    >>> SmallCNN(in_channels=1, embedding_dim=16)(torch.zeros(4, 1, 8, 8)).shape
    torch.Size([4, 16])
    """

    def __init__(self, in_channels=1, embedding_dim=64, channels=(32, 64, 128), n_pool=2,
                 dropout=0.0):
        super().__init__()
        blocks = []
        width = in_channels
        for i, out in enumerate(channels):
            blocks += [
                nn.Conv2d(width, out, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(),
            ]
            if i < n_pool:
                blocks.append(nn.MaxPool2d(2))
            width = out
        blocks += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout:
            blocks.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(width, embedding_dim)

    def forward(self, x):
        return self.head(self.features(x))
