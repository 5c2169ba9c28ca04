"""A small multilayer perceptron, 784-30-30-10: the first network most learners write."""
from __future__ import annotations

from torch import nn

import zoo
from zoo.data.classes import MNIST_CLASSES, MNIST_MEAN, MNIST_STD


class MLP(nn.Module):
    def __init__(self, hidden: int = 30, num_classes: int = 10):
        super().__init__()
        self.flatten = nn.Flatten()  # (b, 784)
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, hidden)
        self.act2 = nn.ReLU()
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = self.act1(self.fc1(self.flatten(x)))
        x = self.act2(self.fc2(x))
        return self.fc3(x)


@zoo.hookimpl
def register_models(register):
    digits = zoo.Transforms(mean=MNIST_MEAN, std=MNIST_STD)
    register(zoo.ModelSpec(
        name="mlp",
        summary="Multilayer perceptron 784-30-30-10 with ReLU",
        builder=MLP,
        dataset="mnist",
        input_shape=(1, 28, 28),
        class_names=MNIST_CLASSES,
        layer_shapes={"flatten": (784,), "fc1": (30,), "fc2": (30,), "fc3": (10,)},
        train_transforms=digits,
        eval_transforms=digits,
        recipe=zoo.Recipe(epochs=15, batch_size=128, optimizer="adamw", lr=1e-2, weight_decay=1e-4,
                          schedule="onecycle", init="default", label_smoothing=0.1),
        reference="seed tutorial: an MLP with two hidden layers of 30 units on MNIST",
    ))
