"""The LeNet-shaped CNN of the PyTorch CIFAR-10 tutorial: 3x32x32 colour images."""
from __future__ import annotations

import zoo
from zoo.data.classes import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD
from zoo.plugins.lenet import LeNet5


def cifar_cnn() -> LeNet5:
    return LeNet5(in_channels=3, conv1_padding=0)  # 3x32x32 -> conv1 (b, 6, 28, 28)


# Not measured here: CIFAR-10 is not on this machine (no network). Reasoned from the
# fast CIFAR-10 recipes (airbench; Page's "How to train your ResNet") and from what
# measured on Fashion-MNIST for lenet5, the same network on 1x28x28 (see plugins/lenet.py):
# - this net has 62k parameters and underfits CIFAR-10 (the PyTorch tutorial stops near
#   55%, long runs level off near 65-70%), so regularisation buys little: no label
#   smoothing, and augmentation held to crop 2 + flip (airbench's strength for short
#   runs) instead of the crop 4 large nets use; a tiny net pays for strong augmentation
#   with early epochs.
# - AdamW with a short onecycle warm-up (0.15) and batch 256 at lr 6e-3 (lenet5's batch
#   size and lr scaling on Fashion-MNIST: twice the batch, twice the lr), cosine down to
#   ~0, 15 epochs.
RECIPE = zoo.Recipe(epochs=15, batch_size=256, optimizer="adamw", lr=6e-3, weight_decay=5e-4,
                    schedule="onecycle", warmup_fraction=0.15, init="kaiming")


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
        train_transforms=zoo.Transforms(mean=CIFAR10_MEAN, std=CIFAR10_STD, crop_padding=2, hflip=True),
        eval_transforms=zoo.Transforms(mean=CIFAR10_MEAN, std=CIFAR10_STD),
        recipe=RECIPE,
        reference="PyTorch tutorial 'Training a Classifier' (CIFAR-10)",
        tutorial=zoo.Tutorial(
            recipe=zoo.Recipe(epochs=2, batch_size=4, optimizer="sgd", lr=0.001, momentum=0.9,
                              schedule="constant"),
            source="PyTorch tutorial 'Training a Classifier': SGD lr 0.001 momentum 0.9, batch 4, 2 epochs, "
                   "the loss printed every 2,000 mini-batches",
            log_every=2000,
            notes="the tutorial normalises with mean 0.5 and std 0.5 per channel; zoo keeps CIFAR-10's own "
                  "mean and std"),
    ))
