"""The LeNet-shaped CNN of the PyTorch CIFAR-10 tutorial: 3x32x32 colour images."""
from __future__ import annotations

import zoo
from zoo.data.classes import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD
from zoo.plugins.lenet import LeNet5


def cifar_cnn() -> LeNet5:
    return LeNet5(in_channels=3, conv1_padding=0)  # 3x32x32 -> conv1 (b, 6, 28, 28)


@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="cifar-cnn",
        summary="The PyTorch tutorial's CIFAR-10 CNN: two 5x5 convs, then 400-120-84-10",
        builder=cifar_cnn,
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
