"""A two-convolution CNN for MNIST, as the seed tutorial builds it."""
from __future__ import annotations

from torch import nn

import zoo
from zoo.data.classes import MNIST_CLASSES, MNIST_MEAN, MNIST_STD


class CNN(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=5, padding=2)  # (b, 16, 28, 28)
        self.act1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # (b, 16, 14, 14)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5, padding=2)  # (b, 32, 14, 14)
        self.act2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # (b, 32, 7, 7)
        self.flatten = nn.Flatten()  # (b, 1568)
        self.fc = nn.Linear(32 * 7 * 7, num_classes)

    def forward(self, x):
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        return self.fc(self.flatten(x))


@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="cnn",
        summary="Two 5x5 conv layers with max-pooling and one linear classifier",
        builder=CNN,
        dataset="mnist",
        input_shape=(1, 28, 28),
        class_names=MNIST_CLASSES,
        layer_shapes={
            "conv1": (16, 28, 28), "pool1": (16, 14, 14),
            "conv2": (32, 14, 14), "pool2": (32, 7, 7),
            "flatten": (1568,), "fc": (10,),
        },
        train_transforms=zoo.Transforms(mean=MNIST_MEAN, std=MNIST_STD, crop_padding=1),
        eval_transforms=zoo.Transforms(mean=MNIST_MEAN, std=MNIST_STD),
        recipe=zoo.Recipe(epochs=15, batch_size=128, optimizer="adamw", lr=3e-3, weight_decay=5e-4,
                          schedule="onecycle", init="default", label_smoothing=0.1),
        reference="seed tutorial: a 2-conv CNN on MNIST (conv 16 and 32 channels, 5x5, padding 2)",
    ))
