"""The LeNet-shaped CNN of the PyTorch CIFAR-10 tutorial: 3x32x32 colour images."""
from __future__ import annotations

from torch import nn

import zoo
from zoo.data.classes import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD


class CifarCNN(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=5)  # (b, 6, 28, 28)
        self.act1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # (b, 6, 14, 14)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)  # (b, 16, 10, 10)
        self.act2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # (b, 16, 5, 5)
        self.flatten = nn.Flatten()  # (b, 400)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.act3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.act4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        x = self.flatten(x)
        x = self.act3(self.fc1(x))
        x = self.act4(self.fc2(x))
        return self.fc3(x)


@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="cifar-cnn",
        summary="The PyTorch tutorial's CIFAR-10 CNN: two 5x5 convs, then 400-120-84-10",
        builder=CifarCNN,
        dataset="cifar10",
        input_shape=(3, 32, 32),
        class_names=CIFAR10_CLASSES,
        layer_shapes={
            "conv1": (6, 28, 28), "pool1": (6, 14, 14),
            "conv2": (16, 10, 10), "pool2": (16, 5, 5),
            "flatten": (400,), "fc1": (120,), "fc2": (84,), "fc3": (10,),
        },
        train_transforms=zoo.Transforms(mean=CIFAR10_MEAN, std=CIFAR10_STD, crop_padding=4, hflip=True),
        eval_transforms=zoo.Transforms(mean=CIFAR10_MEAN, std=CIFAR10_STD),
        recipe=zoo.Recipe(epochs=20, batch_size=128, optimizer="adamw", lr=3e-3, weight_decay=5e-4,
                          schedule="onecycle", init="kaiming"),
        reference="PyTorch tutorial 'Training a Classifier' (CIFAR-10)",
    ))
