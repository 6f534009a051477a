"""torch.nn.modules.module's global hooks (register_module_forward_hook & co.) side by side with
torch: which modules they see, in which order against the modules' own hooks, replacements,
with_kwargs, backward hooks, removal; Sequential's fused paths stand down while one is set."""

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")


def _nets():
    gw.manual_seed(0)
    net = gw.nn.Sequential(gw.nn.Linear(4, 3), gw.nn.ReLU(), gw.nn.Linear(3, 2))
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    tnet.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in net.state_dict().items()})
    return net, tnet


def _run(m, net, x, backward=True):
    """Register one of each global hook plus a local hook on the ReLU; return the event log."""
    log = []
    mm = m.nn.modules.module
    handles = [
        mm.register_module_forward_pre_hook(lambda mod, a: log.append(("pre", type(mod).__name__))),
        mm.register_module_forward_hook(
            lambda mod, a, o: log.append(("fwd", type(mod).__name__, tuple(o.shape)))),
        mm.register_module_full_backward_pre_hook(
            lambda mod, go: log.append(("bpre", type(mod).__name__))),
        mm.register_module_full_backward_hook(
            lambda mod, gi, go: log.append(("bwd", type(mod).__name__))),
        net[1].register_forward_hook(lambda mod, a, o: log.append(("local-fwd", "ReLU"))),
        net[1].register_forward_pre_hook(lambda mod, a: log.append(("local-pre", "ReLU"))),
    ]
    try:
        out = net(x)
        if backward:
            out.sum().backward()
    finally:
        for h in handles:
            h.remove()
    net(x)  # removed: nothing more is logged
    return log


def test_global_hooks_see_every_module_in_torch_order():
    net, tnet = _nets()
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    ours = _run(gw, net, gw.tensor(x, requires_grad=True))
    theirs = _run(torch, tnet, torch.tensor(x, requires_grad=True))
    assert ours == theirs
    assert ("fwd", "ReLU", (5, 3)) in ours  # the fused Linear+ReLU path stood down


def test_global_hooks_under_no_grad_and_the_inplace_relu_path():
    net, tnet = _nets()
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    with gw.no_grad():
        ours = _run(gw, net, gw.tensor(x), backward=False)
    with torch.no_grad():
        theirs = _run(torch, tnet, torch.tensor(x), backward=False)
    assert ours == theirs


@pytest.mark.parametrize("with_kwargs", [False, True])
def test_global_forward_hook_replaces_output_before_local_hooks(with_kwargs):
    results = {}
    for m in (gw, torch):
        lin = m.nn.Linear(2, 2)
        seen: list[float] = []
        lin.register_forward_hook(lambda mod, a, o, seen=seen: seen.append(float(o.detach().sum())))
        hook = (lambda mod, a, kw, o: o * 0 + 1) if with_kwargs else (lambda mod, a, o: o * 0 + 1)
        h = m.nn.modules.module.register_module_forward_hook(hook, with_kwargs=with_kwargs)
        pre = m.nn.modules.module.register_module_forward_pre_hook(lambda mod, a: (a[0] * 2,))
        try:
            out = lin(m.ones(3, 2))
        finally:
            h.remove()
            pre.remove()
        results[m.__name__] = (seen, np.asarray(out.detach()).tolist())
    assert results["gradwise"] == results["torch"]


def test_global_backward_pre_hook_replaces_grad_output():
    grads = {}
    for m in (gw, torch):
        lin = m.nn.Linear(2, 1)
        with m.no_grad():
            lin.weight.fill_(1.0)
        x = m.ones(1, 2, requires_grad=True)
        h = m.nn.modules.module.register_module_full_backward_pre_hook(
            lambda mod, go: (go[0] * 3,))
        try:
            lin(x).sum().backward()
        finally:
            h.remove()
        grads[m.__name__] = np.asarray(x.grad).tolist()
    assert grads["gradwise"] == grads["torch"] == [[3.0, 3.0]]


def test_global_hook_must_be_callable():
    with pytest.raises(TypeError, match="expected a callable hook"):
        gw.nn.modules.module.register_module_forward_hook(3)


def test_torch_import_path_of_modules():
    from gradwise.nn.modules import Linear
    from gradwise.nn.modules.module import Module

    assert Linear is gw.nn.Linear and Module is gw.nn.Module
