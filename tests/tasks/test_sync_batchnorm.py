"""GlobalBatchNorm / convert_sync_batchnorm: DDP over 2 CPU processes (gloo, real torch.distributed) against one
process on the global batch, and the plain-BatchNorm behaviour without a process group."""
from __future__ import annotations

import copy
import os
import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from tasks.sync_batchnorm import GlobalBatchNorm, convert_sync_batchnorm

WORLD = 2
BATCH = 8  # global batch; each rank gets BATCH // WORLD
STEPS = 3
TOL = {"rtol": 1e-4, "atol": 1e-5}


class Net(nn.Module):
    """Conv2d -> BatchNorm2d -> ReLU -> flatten -> Linear -> BatchNorm1d (cumulative average) -> ReLU -> Linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(4)
        self.fc1 = nn.Linear(4 * 5 * 5, 6)
        self.bn1 = nn.BatchNorm1d(6, momentum=None)
        self.fc2 = nn.Linear(6, 2)

    def forward(self, x):  # (B, 3, 5, 5) -> (B, 2)
        x = torch.flatten(F.relu(self.bn2(self.conv(x))), 1)
        return self.fc2(F.relu(self.bn1(self.fc1(x))))


def make_problem():
    torch.manual_seed(0)
    net = Net()
    x = torch.randn(BATCH, 3, 5, 5) * 2 + 0.5
    y = torch.randn(BATCH, 2)
    return net, x, y


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_layer_shapes(rank: int) -> None:
    """GlobalBatchNorm alone, every input rank, float32 and bfloat16, both momentum rules: each rank's output half,
    the input gradients, the summed parameter gradients and the running stats equal plain BatchNorm's on the whole
    batch."""
    for shape in [(8, 3), (8, 3, 5), (8, 3, 4, 4), (8, 3, 2, 3, 3)]:
        for dtype, tol in [(torch.float32, TOL), (torch.bfloat16, {"rtol": 2e-2, "atol": 2e-2})]:
            for momentum in (0.1, None):
                g = torch.Generator().manual_seed(len(shape))
                full = (torch.randn(shape, generator=g) * 3 + 1).to(dtype)
                weight, bias = torch.randn(3, generator=g), torch.randn(3, generator=g)
                seed = torch.randn(shape, generator=g)  # loss = sum(out * seed)
                ref = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[len(shape)](
                    3, momentum=momentum)
                ours = GlobalBatchNorm(3, momentum=momentum)
                for bn in (ref, ours):
                    with torch.no_grad():
                        bn.weight.copy_(weight)
                        bn.bias.copy_(bias)
                half = BATCH // WORLD
                lo = slice(rank * half, (rank + 1) * half)
                for _ in range(2):  # two batches: the running-stat rule (cumulative for momentum=None)
                    x_full = full.detach().float().clone().requires_grad_()
                    out_full = ref(x_full)
                    (out_full * seed).sum().backward()
                    x = full[lo].detach().clone().requires_grad_()
                    out = ours(x)
                    assert out.dtype == dtype and out.shape == x.shape
                    (out.float() * seed[lo]).sum().backward()
                    torch.testing.assert_close(out.float(), out_full[lo].detach(), **tol)
                    torch.testing.assert_close(x.grad.float(), x_full.grad[lo], **tol)
                    for p_ours, p_ref in ((ours.weight, ref.weight), (ours.bias, ref.bias)):
                        grad = p_ours.grad.clone()
                        dist.all_reduce(grad)
                        torch.testing.assert_close(grad, p_ref.grad, **tol)
                        p_ours.grad = p_ref.grad = None
                    full = full * 0.5 - 0.3
                assert ours.running_mean.dtype == torch.float32
                torch.testing.assert_close(ours.running_mean, ref.running_mean, **tol)
                torch.testing.assert_close(ours.running_var, ref.running_var, **tol)
                assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 2


def ddp_worker(rank: int, port: int, state: dict, x: torch.Tensor, y: torch.Tensor, out_path: str) -> None:
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60))
    try:
        net = Net()
        net.load_state_dict(state)
        net = convert_sync_batchnorm(net)
        assert isinstance(net.bn2, GlobalBatchNorm) and isinstance(net.bn1, GlobalBatchNorm)
        model = nn.parallel.DistributedDataParallel(net)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        half = BATCH // WORLD
        lo = slice(rank * half, (rank + 1) * half)
        losses = []
        for _ in range(STEPS):
            opt.zero_grad()
            loss = F.mse_loss(model(x[lo]), y[lo])
            loss.backward()
            opt.step()
            mean_loss = loss.detach().clone()
            dist.all_reduce(mean_loss)
            losses.append(float(mean_loss) / WORLD)
        check_layer_shapes(rank)
        if rank == 0:
            torch.save({"losses": losses, "state": net.state_dict()}, out_path)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_ddp_two_cpu_processes_match_one_process_on_the_global_batch(tmp_path):
    net, x, y = make_problem()
    state = copy.deepcopy(net.state_dict())
    out_path = tmp_path / "ddp.pt"
    mp.spawn(ddp_worker, args=(free_port(), state, x, y, str(out_path)), nprocs=WORLD, join=True)
    got = torch.load(out_path, weights_only=True)

    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = F.mse_loss(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    torch.testing.assert_close(torch.tensor(got["losses"]), torch.tensor(losses), **TOL)
    assert losses[-1] < losses[0]  # it trained
    want = net.state_dict()
    assert list(got["state"]) == list(want)
    for key, value in want.items():
        torch.testing.assert_close(got["state"][key], value, **TOL, msg=lambda m, key=key: f"{key}: {m}")
    assert int(got["state"]["bn1.num_batches_tracked"]) == STEPS
    assert not torch.equal(want["bn2.running_var"], torch.ones(4))  # the stats did move


def test_without_process_group_it_is_plain_batchnorm():
    assert not dist.is_initialized()
    plain, x, _ = make_problem()
    plain.bn1.weight.requires_grad_(False)
    converted = convert_sync_batchnorm(copy.deepcopy(plain))
    assert type(converted.bn2) is GlobalBatchNorm and type(converted.bn1) is GlobalBatchNorm
    assert converted.bn1.momentum is None and converted.bn2.momentum == 0.1 and converted.bn2.eps == plain.bn2.eps
    assert not converted.bn1.weight.requires_grad and converted.bn2.weight.requires_grad
    assert list(converted.state_dict()) == list(plain.state_dict())

    for _ in range(2):  # train mode: identical outputs and running stats
        assert torch.equal(converted(x), plain(x))
    for key, value in plain.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value), key
    plain.eval(), converted.eval()
    assert torch.equal(converted(x), plain(x))

    fresh = Net().eval()  # a converted net's checkpoint loads into the plain net
    fresh.load_state_dict(converted.state_dict(), strict=True)
    assert torch.equal(fresh(x), converted(x))


def test_convert_keeps_tensors_mode_and_leaves_converted_layers():
    bn = nn.BatchNorm3d(5, eps=1e-3, momentum=0.3, affine=False).eval()
    out = convert_sync_batchnorm(bn)
    assert type(out) is GlobalBatchNorm and not out.training and not out.affine and out.weight is None
    assert out.running_mean is bn.running_mean and out.eps == 1e-3 and out.momentum == 0.3
    assert convert_sync_batchnorm(out) is out

    net = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)))
    weight = net[1][0].weight
    out = convert_sync_batchnorm(net)
    assert out is net and type(net[1][0]) is GlobalBatchNorm and net[1][0].weight is weight
    assert net[1][0].running_mean is None and not net[1][0].track_running_stats
    x = torch.randn(6, 3, 7)
    torch.testing.assert_close(net[1](x), F.batch_norm(x, None, None, weight, net[1][0].bias, True, 0.0, 1e-5))
    with pytest.raises(ValueError):
        net[1](torch.randn(6))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_layers_become_torch_syncbatchnorm():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).cuda()
    out = convert_sync_batchnorm(net)
    assert type(out[1]) is nn.SyncBatchNorm
