"""Model registry: every architecture builds in 2D (and 3D where declared), returns logits of
the right shape, and has the structure its paper describes; checkpoints round-trip."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from lungseg.errors import LungsegError
from lungseg.models import build_model, count_parameters, list_models, load_checkpoint, model_spec

ARCHS = ["attention_unet", "efficientnet_b4_unet", "fast_unet", "resnet34_unet", "se_unet_aux", "unet"]


def _logits(out):
    return out[0] if isinstance(out, tuple) else out


def test_registry_lists_every_architecture_with_its_input_convention():
    assert list_models() == ARCHS
    for name in ARCHS:
        spec = model_spec(name)
        assert spec.intensity in ("hu_window", "image") and spec.in_channels == 1 and spec.out_channels == 4
        assert spec.divisibility in (16, 32)
    assert model_spec("resnet34_unet").divisibility == 32
    assert model_spec("se_unet_aux").returns_aux and not model_spec("unet").returns_aux
    assert model_spec("unet", spatial_dims=3, out_channels=2).spatial_dims == 3
    with pytest.raises(LungsegError, match="unknown model"):
        build_model("vnet")
    with pytest.raises(LungsegError, match="unet"):
        build_model("unet", no_such_option=1)


def test_registry_does_not_import_torch():
    code = "import sys, lungseg.models as m; m.list_models(); m.model_spec('unet'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", ARCHS)
def test_2d_forward_gives_logits_per_class(name):
    torch.manual_seed(0)
    model = build_model(name, out_channels=4).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4, 32, 32)  # eval: logits only


@pytest.mark.parametrize("name", ["unet", "attention_unet", "fast_unet", "se_unet_aux"])
def test_3d_forward(name):
    model = build_model(name, spatial_dims=3, out_channels=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 16, 16, 16)).shape == (1, 3, 16, 16, 16)


def test_plain_unet_is_the_classic_layout():
    model = build_model("unet", base_features=8, dropout=0.2)
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(nn.MaxPool2d) == 4 and kinds.count(nn.ConvTranspose2d) == 4
    assert nn.BatchNorm2d in kinds and nn.ReLU in kinds
    assert nn.Dropout2d in kinds and nn.Dropout not in kinds  # spatial dropout
    convs3 = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs3) == 18  # two 3x3 convs per level: 5 down + 4 up levels


def test_attention_maps_are_retrievable():
    model = build_model("attention_unet", channels=(8, 16, 32, 64), strides=(2, 2, 2)).eval()
    with torch.no_grad():
        model(torch.randn(2, 1, 32, 32))
    maps = model.attention_maps
    assert [tuple(m.shape) for m in maps] == [(2, 1, 32, 32), (2, 1, 16, 16), (2, 1, 8, 8)]
    assert all(float(m.min()) >= 0 and float(m.max()) <= 1 for m in maps)  # sigmoid gates


def test_se_unet_aux_returns_aux_logits_in_training_only():
    model = build_model("se_unet_aux", features=(8, 16, 32))
    x = torch.randn(2, 1, 32, 32)
    logits, aux = model(x)
    assert logits.shape == (2, 4, 32, 32) and aux.shape == (2, 3)  # presence of right, left, nodule
    model.eval()
    assert isinstance(model(x), torch.Tensor)
    assert model.forward_with_aux(x)[1].shape == (2, 3)
    from monai.networks.blocks import ChannelSELayer

    assert sum(isinstance(m, ChannelSELayer) for m in model.modules()) == 5  # 3 encoder + 2 decoder blocks
    heavy = count_parameters(build_model("se_unet_aux"))
    light = count_parameters(build_model("se_unet_aux", separable=True))
    assert light < heavy / 3


def test_encoder_unet_options():
    model = build_model("resnet34_unet", dilated_bottleneck=True, decoder_se=True)
    dil = sorted(m.dilation[0] for m in model.bottleneck.modules() if isinstance(m, nn.Conv2d))
    assert dil == [1, 2, 4, 8]
    assert all(hasattr(b, "se") for b in model.decoder.blocks)
    plain = build_model("resnet34_unet", dilated_bottleneck=False, decoder_se=False)
    assert isinstance(plain.bottleneck, nn.Identity)
    assert count_parameters(plain) < count_parameters(model)
    assert 21e6 < count_parameters(plain.encoder) < 22e6  # ResNet-34 without its fc layer


def test_pretrained_encoder_weights_load_from_a_user_file(tmp_path):
    from monai.networks.nets import resnet34

    torch.manual_seed(1)
    # e.g. an RGB-pretrained MONAI ResNet-34 (shortcut A, the FlexibleUNet encoder's layout)
    donor = resnet34(spatial_dims=2, n_input_channels=3, num_classes=10, shortcut_type="A")
    path = tmp_path / "encoder.pt"
    torch.save(donor.state_dict(), path)
    torch.manual_seed(2)
    model = build_model("resnet34_unet", in_channels=1, pretrained_encoder=str(path))
    enc = model.encoder.state_dict()
    assert torch.equal(enc["layer3.2.conv1.weight"], donor.state_dict()["layer3.2.conv1.weight"])
    # the RGB first convolution is summed over its colour channels for a 1-channel CT input
    assert torch.allclose(enc["conv1.weight"], donor.conv1.weight.sum(1, keepdim=True))
    assert model.pretrained_report["skipped"] == ["fc.weight", "fc.bias"]
    torch.save({"nothing": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(LungsegError, match="no tensor"):
        build_model("resnet34_unet", pretrained_encoder=str(tmp_path / "bad.pt"))


def test_fast_unet_is_small():
    n = count_parameters(build_model("fast_unet"))
    assert 1.5e6 < n < 1.7e6


def test_checkpoint_round_trip(tmp_path):
    from lungseg.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    kwargs = {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "features": [8, 16]}
    model = build_model("se_unet_aux", **kwargs).eval()
    path = save_checkpoint(tmp_path / "m.pt", {
        "model_name": "se_unet_aux", "model_kwargs": kwargs, "spec": model_spec("se_unet_aux").to_dict(),
        "classes": ["background", "lung"], "preprocessing": {"dims": 2}, "state_dict": model.state_dict()})
    torch.load(path, weights_only=True)  # plain types only
    loaded, meta = load_checkpoint(path)
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert meta["classes"] == ["background", "lung"] and not loaded.training
    with pytest.raises(LungsegError, match="not a lungseg checkpoint"):
        torch.save({"a": 1}, tmp_path / "x.pt")
        load_checkpoint(tmp_path / "x.pt")
