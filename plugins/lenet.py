"""LeNet-5: the modern variant (ReLU, max-pool) and the classic one (LeCun et al. 1998:
sigmoid, average pooling). Both take 1x28x28 digits, padded to 32x32 by conv1."""
from __future__ import annotations

from torch import nn

import zoo
from zoo.data.classes import MNIST_CLASSES, MNIST_MEAN, MNIST_STD


class LeNet5(nn.Module):
    """Shapes in the comments are for 1x28x28 digits with conv1 padding 2; the CIFAR-10
    tutorial's CNN is the same network on 3x32x32 images with no padding."""

    def __init__(self, activation: type[nn.Module] = nn.ReLU, pool: type[nn.Module] = nn.MaxPool2d,
                 num_classes: int = 10, in_channels: int = 1, conv1_padding: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=conv1_padding)  # (b, 6, 28, 28)
        self.act1 = activation()
        self.pool1 = pool(2)  # (b, 6, 14, 14)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)  # (b, 16, 10, 10)
        self.act2 = activation()
        self.pool2 = pool(2)  # (b, 16, 5, 5)
        self.flatten = nn.Flatten()  # (b, 400)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.act3 = activation()
        self.fc2 = nn.Linear(120, 84)
        self.act4 = activation()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        x = self.flatten(x)
        x = self.act3(self.fc1(x))
        x = self.act4(self.fc2(x))
        return self.fc3(x)


LAYER_SHAPES = {
    "conv1": (6, 28, 28), "pool1": (6, 14, 14),
    "conv2": (16, 10, 10), "pool2": (16, 5, 5),
    "flatten": (400,), "fc1": (120,), "fc2": (84,), "fc3": (10,),
}
DIGITS = zoo.Transforms(mean=MNIST_MEAN, std=MNIST_STD)

# Default recipes, tuned for the fewest seconds to a target test accuracy on full
# Fashion-MNIST (issue 12; benchmarks/time_to_accuracy.py, figures in the README),
# measured as whole processes side by side with the tutorial loop (DataLoader(64),
# Adam 1e-3), one thread each, on 2 cores shared with other jobs (load 10-25).
# - Schedule: onecycle with a short warm-up (10% of the steps; 30% spent 1-2 epochs
#   at low lr for nothing) and a cosine decay to ~0. The test accuracy climbs fastest
#   once the lr comes down, so the run is only as long as the final accuracy needs.
# - Batch 256 with the lr of batch 128 kept (1e-2 for AdamW, whose steps are scale-free
#   and tolerate it): on one CPU thread a batch-256 epoch took 167-185 s against
#   187-220 s for batch 128 in the same window, with as good a curve per epoch.
# - AdamW over SGD: small nets without batch norm reach the target in fewer epochs
#   with it; weight decay 5e-4 and label smoothing 0.1 as before.
# - No augmentation: a random 1-pixel shift cost Fashion-MNIST accuracy at every epoch
#   of an 8-epoch run (90% at epoch 7 instead of 5, 90.80% final instead of 91.27%).
# - channels_last convolutions come from zoo on the CPU; torch.compile is not used (it
#   did not make a step faster here, so its compile time would only be added).
# - Start-up (imports, reading the gzip IDX files, building the optimizer, which
#   imports torch._dynamo) is paid once by both loops and is a few epochs' worth of
#   nothing to win by recipe.
LENET5_RECIPE = zoo.Recipe(epochs=12, batch_size=256, optimizer="adamw", lr=1e-2, weight_decay=5e-4,
                           schedule="onecycle", warmup_fraction=0.1, init="default", label_smoothing=0.1)


@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="lenet5",
        summary="LeNet-5 with ReLU and max-pooling, the modern textbook variant",
        builder=LeNet5,
        dataset="mnist",
        input_shape=(1, 28, 28),
        class_names=MNIST_CLASSES,
        layer_shapes=LAYER_SHAPES,
        train_transforms=DIGITS,
        eval_transforms=DIGITS,
        recipe=LENET5_RECIPE,
        reference="LeCun et al., Gradient-Based Learning Applied to Document Recognition, 1998",
    ))
    register(zoo.ModelSpec(
        name="lenet5-classic",
        summary="LeNet-5 as in LeCun 1998: sigmoid activations and average pooling",
        builder=lambda: LeNet5(activation=nn.Sigmoid, pool=nn.AvgPool2d),
        dataset="mnist",
        input_shape=(1, 28, 28),
        class_names=MNIST_CLASSES,
        layer_shapes=LAYER_SHAPES,
        train_transforms=DIGITS,
        eval_transforms=DIGITS,
        recipe=zoo.Recipe(epochs=15, batch_size=128, optimizer="adam", lr=3e-3, schedule="onecycle",
                          init="xavier"),
        reference="LeCun et al., Gradient-Based Learning Applied to Document Recognition, 1998",
    ))
