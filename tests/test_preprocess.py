"""One normalisation for every path: a real digit, written as a PNG, must reach the model as
the same float32 tensor through training augmentation, evaluation, the --raw-input ONNX
graph and predict (zoo.preprocess.Normalize is the one definition they share)."""
from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2

import zoo
from zoo.data.resolve import load_dataset


class Probe(nn.Module):
    """Records the tensor it is given; answers with fixed logits (it is not what is tested)."""

    def __init__(self, classes: int):
        super().__init__()
        self.classes = classes
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return torch.zeros(x.shape[0], self.classes)


@pytest.fixture(scope="module")
def digit(tmp_path_factory):
    """(spec, uint8 (1, 1, 28, 28) pixels, the PNG they were written to) of a real test digit."""
    spec = zoo.get_spec("lenet5")
    test = load_dataset("mnist", "test", offline=True)
    pixels = test.images[:1].clone()
    png = tmp_path_factory.mktemp("preprocess") / "digit.png"
    Image.fromarray(pixels[0, 0].numpy()).save(png)
    return spec, pixels, png


def reference(pixels: torch.Tensor, t) -> torch.Tensor:
    """What the spec declares, computed by torchvision itself."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(t.mean), list(t.std))])(pixels)


def test_the_same_image_is_the_same_tensor_on_every_path(digit):
    from zoo.onnx.export import ExportOptions, convert, inference_module, trace
    from zoo.onnx.predict import _normalised
    from zoo.onnx.runtime import open_session
    from zoo.predict import predict_torch, read_images
    from zoo.train import evaluate
    from zoo.train.augment import AugmentParams, BatchTransform

    spec, pixels, png = digit
    assert spec.train_transforms.mean == spec.eval_transforms.mean  # else the paths may rightly differ
    expected = reference(pixels, spec.eval_transforms)
    assert torch.equal(torch.from_numpy(read_images([png], spec.input_shape)), pixels)  # the PNG round-trips

    # training: the augmentation path with a crop at the centre and no flip
    pad = spec.train_transforms.crop_padding
    centre = AugmentParams(torch.tensor([pad]), torch.tensor([pad]), torch.tensor([False]))
    training = BatchTransform(spec.train_transforms)(pixels, centre)

    # evaluation: what zoo.train.evaluate feeds the model
    probe = Probe(spec.num_classes)
    evaluate(probe, pixels, torch.zeros(1, dtype=torch.int64), spec)
    evaluation = probe.seen[-1]

    # predict --torch (and features, which normalise the same way): from the PNG file
    predict_torch(spec, probe, [png])
    predicted = probe.seen[-1]

    # the --raw-input ONNX graph, run by ONNX Runtime: uint8 in, the normalised tensor out
    options = ExportOptions(raw_input=True)
    graph = convert(trace(inference_module(spec, nn.Flatten(), raw_input=True), spec, options), options)
    in_graph = torch.from_numpy(open_session(graph.SerializeToString()).run(pixels.numpy())).view_as(expected)

    # ONNX Runtime prediction of a float32 export normalises outside the graph
    outside = torch.from_numpy(_normalised(pixels.numpy(), spec.eval_transforms.mean, spec.eval_transforms.std))

    torch.testing.assert_close(training, expected, rtol=0, atol=1e-6)  # torchvision may round differently
    for name, got in (("evaluation", evaluation), ("predict", predicted), ("onnx predict", outside)):
        assert got.dtype == torch.float32 and torch.equal(got, training), name  # bit for bit
    torch.testing.assert_close(in_graph, training, rtol=0, atol=1e-6)  # ONNX Runtime may fuse the arithmetic
    assert float(expected.std()) > 0.5  # a real digit, not a blank image


def test_normalize_refuses_float_input():
    spec = zoo.get_spec("lenet5")
    from zoo.preprocess import normalize

    with pytest.raises(TypeError, match="uint8"):
        normalize(torch.zeros(1, *spec.input_shape), spec.eval_transforms)
