"""PyTorch <-> gradwise weights through safetensors files, both ways, for every layer kind."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
tnn = torch.nn


def _pairs():
    """(name, build gradwise model, build torch model, input shape, integer input?)"""
    return {
        "linear": (lambda: nn.Sequential(nn.Linear(5, 4)), lambda: tnn.Sequential(tnn.Linear(5, 4)),
                   (5,), False),
        "linear_no_bias": (lambda: nn.Sequential(nn.Linear(5, 4, bias=False)),
                           lambda: tnn.Sequential(tnn.Linear(5, 4, bias=False)), (5,), False),
        "conv": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1)),
                 lambda: tnn.Sequential(tnn.Conv2d(2, 3, 3, padding=1)), (2, 5, 5), False),
        "batchnorm1d": (lambda: nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6)),
                        lambda: tnn.Sequential(tnn.Linear(4, 6), tnn.BatchNorm1d(6)), (4,), False),
        "batchnorm2d": (lambda: nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3)),
                        lambda: tnn.Sequential(tnn.Conv2d(1, 3, 3), tnn.BatchNorm2d(3)),
                        (1, 5, 5), False),
        "layernorm": (lambda: nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6)),
                      lambda: tnn.Sequential(tnn.Linear(4, 6), tnn.LayerNorm(6)), (4,), False),
        "embedding": (lambda: nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(12, 2)),
                      lambda: tnn.Sequential(tnn.Embedding(10, 3), tnn.Flatten(),
                                             tnn.Linear(12, 2)), (4,), True),
        "cnn_with_everything": (
            lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Dropout(0.2), nn.Flatten(),
                                  nn.Linear(36, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 3)),
            lambda: tnn.Sequential(tnn.Conv2d(1, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(),
                                   tnn.MaxPool2d(2), tnn.Dropout(0.2), tnn.Flatten(),
                                   tnn.Linear(36, 8), tnn.LayerNorm(8), tnn.Tanh(),
                                   tnn.Linear(8, 3)),
            (1, 6, 6), False),
    }


PAIRS = _pairs()


def _input(shape, integer, seed=0):
    rng = np.random.default_rng(seed)
    if integer:
        return rng.integers(0, 10, size=(6, *shape)).astype(np.int64)
    return rng.standard_normal((6, *shape)).astype(np.float32)


def _train_torch_a_little(model, shape, integer):
    """A few steps so weights and running statistics are not their initial values."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for seed in range(3):
        out = model(torch.from_numpy(_input(shape, integer, seed)))
        optimizer.zero_grad()
        out.square().mean().backward()
        optimizer.step()
    return model.eval()


def _same_outputs(gw_model, torch_model, shape, integer):
    x = _input(shape, integer, seed=9)
    gw_model.eval()
    torch_model.eval()
    with gw.no_grad(), torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
        got = gw_model(gw.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_torch_file_loads_into_gradwise(name, tmp_path):
    make_gw, make_torch, shape, integer = PAIRS[name]
    torch.manual_seed(0)
    torch_model = _train_torch_a_little(make_torch(), shape, integer)
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(torch_model.state_dict(), str(path))
    gw_model = make_gw()
    assert gw.nn.load_safetensors(gw_model, path) == ([], [])
    _same_outputs(gw_model, torch_model, shape, integer)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_gradwise_file_loads_into_torch(name, tmp_path):
    make_gw, make_torch, shape, integer = PAIRS[name]
    gw_model = make_gw()
    for module in gw_model.modules():  # non-trivial running statistics
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.running_mean.numpy()[...] = np.linspace(-1, 1, module.num_features)
            module.running_var.numpy()[...] = np.linspace(0.5, 2, module.num_features)
            module.num_batches_tracked.numpy()[...] = 7
    path = tmp_path / "model.safetensors"
    gw.nn.save_safetensors(gw_model, path, metadata={"source": "gradwise"})
    torch_model = make_torch()
    torch_model.load_state_dict(safetensors_torch.load_file(str(path)))  # strict
    _same_outputs(gw_model, torch_model, shape, integer)
    for key, value in torch_model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), gw_model.state_dict()[key], err_msg=key)


def test_mismatched_files_are_refused_and_nothing_loads(tmp_path):
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(tnn.Sequential(tnn.Linear(5, 3)).state_dict(), str(path))
    model = nn.Sequential(nn.Linear(5, 4))
    # a snapshot: state_dict() shares memory with the model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(gw.nn.StateDictError, match=r"0\.weight"):
        gw.nn.load_safetensors(model, path)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    safetensors_torch.save_file(tnn.Sequential(tnn.Linear(5, 4)).state_dict(), str(path))
    bigger = nn.Sequential(nn.Linear(5, 4), nn.LayerNorm(4))
    with pytest.raises(gw.nn.StateDictError, match=r"1\.weight"):
        gw.nn.load_safetensors(bigger, path)
    missing, unexpected = gw.nn.load_safetensors(bigger, path, strict=False)
    assert missing == ["1.weight", "1.bias"] and unexpected == []


def test_unreadable_files_name_the_file(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(FileNotFoundError, match="no file at .*absent.safetensors"):
        gw.nn.load_safetensors(model, tmp_path / "absent.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="junk.safetensors: not a readable safetensors file"):
        gw.nn.load_safetensors(model, junk)
    bf16 = tmp_path / "bf16.safetensors"
    safetensors_torch.save_file(tnn.Sequential(tnn.Linear(3, 2)).to(torch.bfloat16).state_dict(),
                                str(bf16))
    with pytest.raises(ValueError, match="bfloat16 has no NumPy dtype"):
        gw.nn.load_safetensors(model, bf16)
    with pytest.raises(TypeError, match="metadata must map strings to strings"):
        gw.nn.save_safetensors(model, tmp_path / "m.safetensors", metadata={"epochs": 3})
    assert not (tmp_path / "m.safetensors").exists()


def _trained_state(model):
    """Non-trivial buffers, 0-d counters included, so a round trip that drops them shows."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.running_mean.numpy()[...] = np.linspace(-1, 1, module.num_features)
            module.num_batches_tracked.numpy()[...] = 7
    return model.state_dict()


def _save_paths():
    """Every way gradwise writes a model's weights, each as save(model, folder) -> load(model)."""
    from gradwise.recipes import TrainConfig
    from gradwise.runs import layout
    from gradwise.train.checkpoint import CheckpointData, load_model_weights, save_checkpoint

    def run_weights(model, folder):
        path = folder / layout.WEIGHTS_NAME
        layout.save_weights(model, path, TrainConfig.from_recipe("xor"))
        return lambda target: target.load_state_dict(layout.load_weights(path))

    def checkpoint(model, folder):
        save_checkpoint(folder / "ckpt", CheckpointData(model_state=model.state_dict()))
        return lambda target: load_model_weights(folder / "ckpt", target)

    def safetensors_file(model, folder):
        gw.nn.save_safetensors(model, folder / "m.safetensors")
        return lambda target: gw.nn.load_safetensors(target, folder / "m.safetensors")

    return {"run_weights": run_weights, "checkpoint": checkpoint,
            "save_safetensors": safetensors_file}


SAVE_PATHS = _save_paths()


@pytest.mark.parametrize("how", sorted(SAVE_PATHS))
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_every_save_path_round_trips_in_gradwise(name, how, tmp_path):
    """Regression: 0-d buffers (num_batches_tracked) came back as (1,) from save_safetensors and
    the run folder's weights, and then did not load into the same model."""
    make_gw, make_torch, _, _ = PAIRS[name]
    saved = _trained_state(make_gw())
    source = make_gw()
    source.load_state_dict(saved)
    load = SAVE_PATHS[how](source, tmp_path)
    target = make_gw()
    load(target)
    torch_shapes = {k: tuple(v.shape) for k, v in make_torch().state_dict().items()}
    assert {k: v.shape for k, v in target.state_dict().items()} == torch_shapes
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value, saved[key], err_msg=key)


def test_saved_files_keep_zero_d_shapes(tmp_path):
    import safetensors.numpy

    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
    gw.nn.save_safetensors(model, tmp_path / "bn.safetensors")
    assert safetensors.numpy.load_file(str(tmp_path / "bn.safetensors"))[
        "1.num_batches_tracked"].shape == ()


def test_one_element_counters_of_older_files_load_as_torch_does(tmp_path):
    """Files written before the fix hold num_batches_tracked as (1,); PyTorch loads a
    one-element 1-d array into a 0-d tensor, and refuses any other shape."""
    import safetensors.numpy

    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
    state = {k: np.asarray(v) for k, v in model.state_dict().items()}
    state["1.num_batches_tracked"] = np.array([5], dtype=np.int64)
    safetensors.numpy.save_file(state, str(tmp_path / "old.safetensors"))
    gw.nn.load_safetensors(model, tmp_path / "old.safetensors")
    assert model.state_dict()["1.num_batches_tracked"].shape == ()
    assert int(model.state_dict()["1.num_batches_tracked"]) == 5
    torch_model = tnn.Sequential(tnn.Linear(4, 8), tnn.BatchNorm1d(8))
    torch_model.load_state_dict(safetensors_torch.load_file(str(tmp_path / "old.safetensors")))
    for bad in ([5, 6], [[5]]):
        state["1.num_batches_tracked"] = np.array(bad, dtype=np.int64)
        with pytest.raises(gw.nn.StateDictError, match=r"1\.num_batches_tracked"):
            model.load_state_dict(state)
        with pytest.raises(RuntimeError, match="num_batches_tracked"):
            torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})


@pytest.mark.parametrize("legacy", [False, True])
def test_pytorch_pickle_files_are_named_and_never_unpickled(legacy, tmp_path, monkeypatch):
    import pickle

    path = tmp_path / "model.pt"
    torch.save(tnn.Linear(3, 2).state_dict(), str(path),
               _use_new_zipfile_serialization=not legacy)
    monkeypatch.setattr(pickle, "loads", None)  # any unpickling attempt would fail differently
    monkeypatch.setattr(pickle, "load", None)
    with pytest.raises(ValueError, match=r"model\.pt is a PyTorch pickle file .*never unpickles"):
        gw.nn.load_safetensors(nn.Linear(3, 2), path)


def test_gw_save_of_a_state_dict_is_read_by_torch_under_its_own_keys(tmp_path):
    """issue 11: gw.save(model.state_dict(), p) wrote t0..t8; torch's load_file now sees the
    real keys and values, and gw.load still gives Tensors (arrays stay arrays)."""
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    state = model.state_dict()
    path = tmp_path / "model.safetensors"
    gw.save(state, path)
    theirs = safetensors_torch.load_file(str(path))
    assert set(theirs) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(theirs[key].numpy().reshape(np.shape(value)),
                                      np.asarray(value))
    back = gw.load(path)
    assert list(back) == list(state)
    assert all(isinstance(v, gw.Tensor) for v in back.values())
    mixed = {"w": np.arange(3.0), "b": gw.ones(2)}
    gw.save(mixed, path)
    again = gw.load(path)
    assert isinstance(again["w"], np.ndarray) and isinstance(again["b"], gw.Tensor)
    assert set(safetensors_torch.load_file(str(path))) == {"w", "b"}
    model.load_state_dict(back)  # what gw.load gives back loads into the model
    nested = {"model": state, "step": 3}  # not flat: the structure keeps t0.. names
    gw.save(nested, path)
    assert gw.load(path)["step"] == 3
