"""Issue 14: GRADWISE_JIT's values, the public switch, and no process-wide numba settings."""

import os
import subprocess
import sys
import textwrap
import warnings

import pytest

import gradwise as gw
from gradwise.autograd.kernels import _jit


@pytest.mark.parametrize("value", ["0", "false", "OFF", " no ", "False"])
def test_off_words(value):
    assert _jit._parse_env(value) is False


@pytest.mark.parametrize("value", [None, "", "1", "true", "On", "YES"])
def test_on_words(value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _jit._parse_env(value) is True


@pytest.mark.parametrize("value", ["2", "disable", "nope"])
def test_unknown_value_warns_naming_it(value):
    with pytest.warns(RuntimeWarning, match=f"GRADWISE_JIT={value!r}"):
        assert _jit._parse_env(value) is True


def _run(code, **env):
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full,
                          capture_output=True, text=True, timeout=120)


def test_environment_read_at_import():
    pytest.importorskip("numba")
    code = "import gradwise as gw; print(gw.backends.jit.is_enabled())"
    assert _run(code, GRADWISE_JIT="off").stdout.strip() == "False"
    assert _run(code, GRADWISE_JIT="TRUE").stdout.strip() == "True"
    bad = _run(code, GRADWISE_JIT="maybe")
    assert bad.stdout.strip() == "True" and "GRADWISE_JIT='maybe'" in bad.stderr


def test_public_switch_round_trip():
    if not gw.backends.jit.is_available():
        with pytest.raises(RuntimeError, match="numba"):
            gw.backends.jit.set_enabled(True)
        return
    previous = gw.backends.jit.set_enabled(False)
    try:
        assert gw.backends.jit.is_enabled() is False
        assert gw.backends.jit.set_enabled(True) is False
        assert gw.backends.jit.is_enabled() is True
    finally:
        gw.backends.jit.set_enabled(previous)


def test_import_leaves_numba_threading_layer_alone():
    pytest.importorskip("numba")
    code = """
        import os
        os.environ.pop("NUMBA_THREADING_LAYER", None)
        import numba
        before = numba.config.THREADING_LAYER
        import gradwise
        print(before == numba.config.THREADING_LAYER, numba.config.THREADING_LAYER)
    """
    out = _run(code).stdout.split()
    assert out[0] == "True", out


def test_no_gradwise_kernel_is_parallel():
    # the module docstring's promise: every kernel serial, so no threading layer is needed
    pytest.importorskip("numba")
    import importlib
    import pkgutil

    import gradwise.autograd.kernels as kernels
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"gradwise.autograd.kernels.{info.name}")
        for value in vars(module).values():
            options = getattr(value, "targetoptions", None)
            if isinstance(options, dict):
                assert not options.get("parallel"), (info.name, value)
