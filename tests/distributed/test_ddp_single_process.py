"""DistributedDataParallel in a group of one: the wrapper's own behaviour, without MPI."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn
from gradwise.distributed import DistributedError
from gradwise.nn import functional as F
from gradwise.nn.parallel import DistributedDataParallel


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Dropout(0.2, rng=1),
                         nn.Linear(8, 3, rng=2))


def _grads(model: nn.Module) -> list[np.ndarray]:
    return [np.asarray(p.grad).copy() for p in model.parameters()]


def _batch(seed: int = 0) -> tuple[gw.Tensor, gw.Tensor]:
    rng = np.random.default_rng(seed)
    return gw.tensor(rng.standard_normal((6, 4)).astype(np.float32)), gw.tensor(
        rng.integers(0, 3, 6))


def test_gradients_equal_the_bare_models() -> None:
    bare, wrapped_inner = _model(), _model()
    ddp = DistributedDataParallel(wrapped_inner, bucket_cap_mb=1e-4)  # one bucket per tensor
    assert len(ddp.bucket_sizes) == 4 and sum(ddp.bucket_sizes) == 4 * 8 + 8 + 8 * 3 + 3
    assert ddp.allreduce_bytes_per_step == 4 * sum(ddp.bucket_sizes)
    x, y = _batch()
    F.cross_entropy(bare(x), y).backward()
    F.cross_entropy(ddp(x), y).backward()
    for got, expected in zip(_grads(wrapped_inner), _grads(bare), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_no_sync_accumulates_like_the_bare_model() -> None:
    bare, inner = _model(), _model()
    ddp = DistributedDataParallel(inner)
    (x1, y1), (x2, y2) = _batch(1), _batch(2)
    F.cross_entropy(bare(x1), y1).backward()
    F.cross_entropy(bare(x2), y2).backward()
    with ddp.no_sync():
        F.cross_entropy(ddp(x1), y1).backward()
    F.cross_entropy(ddp(x2), y2).backward()
    for got, expected in zip(_grads(inner), _grads(bare), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_state_dict_and_names_are_the_wrapped_models() -> None:
    inner = _model()
    ddp = DistributedDataParallel(inner)
    assert list(ddp.state_dict()) == list(inner.state_dict())
    assert [n for n, _ in ddp.named_parameters()] == [n for n, _ in inner.named_parameters()]
    ddp.load_state_dict(_model().state_dict())
    assert ddp.rng_state() == inner.rng_state()


def test_a_parameter_without_gradient_is_named_at_the_next_forward() -> None:
    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(4, 2, rng=0)
            self.unused = nn.Linear(4, 2, rng=1)

        def forward(self, x: gw.Tensor) -> gw.Tensor:
            return self.used(x)

    ddp = DistributedDataParallel(TwoHeads())
    x, _ = _batch()
    ddp(x).sum().backward()
    with pytest.raises(DistributedError, match=r"no gradient to 2 parameter\(s\) \(unused.weight"):
        ddp(x)


def test_eval_and_no_grad_forwards_do_not_expect_a_backward() -> None:
    ddp = DistributedDataParallel(_model())
    x, y = _batch()
    with gw.no_grad():
        ddp(x)
    ddp.eval()
    ddp(x)
    ddp.train()
    F.cross_entropy(ddp(x), y).backward()
    ddp(x)  # the previous backward completed: no error


@pytest.mark.parametrize("cap", [0, -1, True, "25"])
def test_bad_bucket_sizes_are_named(cap: object) -> None:
    with pytest.raises(ValueError, match="bucket_cap_mb must be a positive number"):
        DistributedDataParallel(_model(), bucket_cap_mb=cap)


def test_only_modules_are_wrapped() -> None:
    with pytest.raises(TypeError, match="module must be a gw.nn.Module"):
        DistributedDataParallel(lambda x: x)


def test_trainer_distributed_alone_trains_like_a_group_of_one(tmp_path) -> None:
    from gradwise.train import Trainer

    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 4)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    model = _model()
    trainer = Trainer(model, nn.CrossEntropyLoss(), gw.optim.SGD(model.parameters(), lr=0.1),
                      progress=False, distributed=True)
    assert isinstance(trainer.model, DistributedDataParallel)
    history = trainer.fit((x, y), val_data=(x, y), epochs=2, batch_size=8)
    assert [e["samples"] for e in history.epochs] == [30, 30]
    path = trainer.save_checkpoint(tmp_path / "ckpt")
    assert (path / "checkpoint.json").is_file()
    fresh = _model()
    resumed = Trainer(fresh, nn.CrossEntropyLoss(), gw.optim.SGD(fresh.parameters(), lr=0.1),
                      progress=False, distributed=True)
    resumed.fit((x, y), epochs=3, batch_size=8, resume_from=path)
    assert resumed.epoch == 3


def test_convert_sync_batchnorm_keeps_order_state_and_alone_equals_batchnorm() -> None:
    from gradwise.nn.parallel import SyncBatchNorm

    def cnn() -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 3, 3, rng=0), nn.BatchNorm2d(3), nn.ReLU(),
                             nn.Flatten(), nn.Linear(3 * 4 * 4, 2, rng=1),
                             nn.BatchNorm1d(2, momentum=None))

    plain, synced = cnn(), SyncBatchNorm.convert_sync_batchnorm(cnn())
    assert [type(m).__name__ for m in synced] == ["Conv2d", "SyncBatchNorm", "ReLU", "Flatten",
                                                  "Linear", "SyncBatchNorm"]
    assert list(synced.state_dict()) == list(plain.state_dict())
    x = gw.tensor(np.random.default_rng(0).standard_normal((5, 1, 6, 6)).astype(np.float32))
    for model in (plain, synced):
        model(x).sum().backward()
    for (name, got), expected in zip(synced.state_dict().items(), plain.state_dict().values(),
                                     strict=True):
        np.testing.assert_array_equal(got, expected, err_msg=name)
    for got, expected in zip(_grads(synced), _grads(plain), strict=True):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match=r"SyncBatchNorm\(3\): expected input"):
        SyncBatchNorm(3)(gw.zeros(4, 2))


def test_the_doctor_names_layers_as_in_the_bare_model() -> None:
    from gradwise.doctor import Doctor

    ddp = DistributedDataParallel(_model())
    doctor = Doctor(ddp)  # watches the replica inside: "1", not "module.1" (docs/DISTRIBUTED.md)
    x, y = _batch()
    gw.train.Trainer(ddp, nn.CrossEntropyLoss(), gw.optim.SGD(ddp.parameters(), lr=0.1),
                     doctor=doctor, seed=0).fit((x._data, y._data), epochs=1, batch_size=3)
    assert sorted(doctor.stats.activations) == ["1"]  # the ReLU
    assert sorted(doctor.stats.params) == ["0.bias", "0.weight", "3.bias", "3.weight"]


def test_all_gather_refuses_a_list_of_the_wrong_length_or_shape() -> None:
    gw.distributed.init()
    with pytest.raises(ValueError, match=r"holds 2 tensor\(s\); it needs one per rank \(1\)"):
        gw.distributed.all_gather([gw.zeros(2), gw.zeros(2)], gw.ones(2))
    with pytest.raises(ValueError, match=r"tensor_list\[0\] is \(3,\).*shape \(2,\)"):
        gw.distributed.all_gather([gw.zeros(3)], gw.ones(2))
    out = [gw.zeros(2)]
    assert gw.distributed.all_gather(out, gw.ones(2)) is out
    np.testing.assert_array_equal(np.asarray(out[0].data), [1.0, 1.0])
