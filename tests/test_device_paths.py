"""The device paths are whole: every tensor a GPU run makes goes to the model's device, without a GPU.

`FakeTensorMode` makes fake `cuda` tensors on a CPU-only machine (shapes and devices, no data) and raises as soon
as a `cuda` and a `cpu` tensor meet in one operation, which is what a real GPU does. Forward passes only: autocast
and backward do not run there (the CPU tests of fp16/bf16 and `clustercam_gpu_check` cover those). Each test
builds its own network inside the mode, so that no fake weight leaks into another test."""
import numpy as np
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from clustercam.model import ClusterCAM
from clustercam.refine import PAR, multiscale_cams, pseudo_labels
from clustercam.infer import predict_probs
from clustercam.cams import cam_labels, batch_cam_labels, stack_batch
from clustercam.figures import attention_maps
from clustercam.harness.demo import training_scale_cams
from clustercam.harness import study

TINY = dict(embed_dim=48, depth=2, num_heads=2, st_depth=2, decoder_width=32)
K, S = 5, 64
CUDA = torch.device('cuda', 0)


@pytest.fixture
def fake():
    "Inside: a tiny ClusterCAM on a fake `cuda` device; CPU inputs made here stay real CPU tensors until moved."
    torch.manual_seed(0)
    net = ClusterCAM(K, img_size=S, **TINY).eval()
    plain = ClusterCAM(K, img_size=S, **{**TINY, 'st_depth': 0}).eval()      # the study's arm without clustering blocks
    image = torch.randn(3, S, S)
    labels = torch.tensor([1., 0., 1., 0., 0.])
    rgb = torch.randint(0, 256, (S, S, 3), dtype=torch.uint8)
    with FakeTensorMode(allow_non_fake_inputs=True):
        yield net.to(CUDA), image, labels, rgb, plain.to(CUDA)


def on_cuda(*ts):
    for t in ts: assert t.device == CUDA, t.device


def test_forward_and_cams(fake):
    net, image, labels, rgb, plain = fake
    x = image[None].to(CUDA)
    cls, pat, seg = net(x)
    on_cuda(cls, pat, seg, net.cams(x), multiscale_cams(net, x, (1.0, 0.75, 1.25), training=False))


def test_pseudo_labels(fake):
    net, image, labels, rgb, plain = fake
    x = image[None].to(CUDA)
    cams = multiscale_cams(net, x, (1.0, 0.5), refine=True)
    images01 = rgb.permute(2, 0, 1)[None].float().div(255).to(CUDA)
    on_cuda(pseudo_labels(cams.float(), labels[None].to(CUDA), images01, PAR(num_iter=2).to(CUDA), max_present=2))


def test_offline_cams_and_inference(fake):
    net, image, labels, rgb, plain = fake
    cams, maps = cam_labels(net, image, labels, rgb, PAR(num_iter=2).to(CUDA), scales=(1.0, 0.5))   # CPU inputs, as the loader gives
    on_cuda(cams, maps['seed'], maps['mask'])
    on_cuda(predict_probs(net, image.to(CUDA), (1.0, 0.75), flip=True))
    # (`infer.predictions` runs a DataLoader, whose seeding cannot run on fake tensors: its CPU tests are in 40_infer)


def test_figure_helpers(fake):
    "`attention_maps` and the study's maps take CPU images (what `to_normalized` gives) and a model on any device."
    net, image, labels, rgb, plain = fake
    maps = attention_maps(net, image)
    on_cuda(maps['patch_to_class'], maps['cluster_to_class'], maps['cam'])
    assert training_scale_cams(net, np.zeros((S, S, 3), np.uint8), 1.0).device.type == 'cpu'
    arm = study.arm_maps(net, np.zeros((S, S, 3), np.uint8), 1, 1.0, (1.0,), False)
    assert all(m.device.type == 'cpu' for m in arm), [m.device for m in arm]
    assert all(m.device.type == 'cpu' for m in study.arm_maps(plain, np.zeros((S, S, 3), np.uint8), 1, 1.0, (1.0,), False))


def test_batched_cams():
    "`cams_for_split`'s batches: same-size images stacked on the host, CAMs and label maps of the batch on the device."
    torch.manual_seed(0)
    net = ClusterCAM(K, img_size=S, **TINY).eval()
    items = [{'image': torch.randn(3, S, S), 'labels': torch.tensor([1., 0., 1., 0., 0.]), 'rgb': torch.randint(0, 256, (S, S, 3), dtype=torch.uint8)}
             for _ in range(3)]
    b = stack_batch(items)          # pinned memory needs a real GPU: the CPU batch here, copied as on one
    with FakeTensorMode(allow_non_fake_inputs=True):
        net = net.to(CUDA)
        cams, maps = batch_cam_labels(net, b['image'], b['labels'], b['rgb'], PAR(num_iter=2).to(CUDA), scales=(1.0, 0.5))
        on_cuda(cams, maps['seed'], maps['mask'])
        assert cams.shape == (3, K, S, S) and maps['seed'].shape == maps['mask'].shape == (3, S, S)
