"""Random number generation with PyTorch's names: ``gw.Generator``, ``gw.manual_seed`` and the
one default generator.

Every random function in gradwise (factories, ``nn.init``, dropout, data shuffling) takes a
``generator=`` (PyTorch's name) or ``rng=`` (gradwise's older name): a ``gw.Generator``, a
``numpy.random.Generator`` or an int seed. When neither is given it draws from the default
generator, which ``gw.manual_seed(n)`` re-seeds, so a program that calls ``gw.manual_seed`` first
is reproducible (layers created without ``rng=`` included), as in PyTorch.

The streams are NumPy's PCG64, so the numbers differ from PyTorch's Mersenne Twister for the same
seed (docs/PORTING.md).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from gradwise.autograd.device import device as _device

# PyTorch seeds its default CPU generator with this value at start-up (c10 default_rng_seed_val),
# so an unseeded program is still deterministic; gradwise does the same.
DEFAULT_SEED = 67280421310721


class Generator:
    """A random stream with PyTorch's ``torch.Generator`` interface, over NumPy's PCG64.

    Args:
        device: only ``"cpu"`` is accepted (a GPU device raises, naming it).

    Example:
        >>> g = gw.Generator().manual_seed(2147483647)
        >>> x = gw.randn(3, generator=g)
    """

    def __init__(self, device: Any = "cpu") -> None:
        self.device = _device(device)
        self._seed = DEFAULT_SEED
        self._rng = np.random.Generator(np.random.PCG64(DEFAULT_SEED))

    def manual_seed(self, seed: int) -> Generator:
        """Re-seed in place (the same stream object, so holders see the new seed); returns self.

        Raises:
            TypeError: ``seed`` is not an int.
        """
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"manual_seed: seed must be an int, got {seed!r}")
        # PyTorch accepts negative seeds by taking them modulo 2**64
        self._seed = int(seed) % (1 << 64)
        self._rng.bit_generator.state = np.random.PCG64(self._seed).state
        return self

    def seed(self) -> int:
        """Re-seed from fresh OS entropy and return the new seed (``torch.Generator.seed``)."""
        entropy = np.random.SeedSequence().entropy  # an int when drawn from the OS
        new_seed = int(cast(int, entropy)) % (1 << 63)
        self.manual_seed(new_seed)
        return new_seed

    def initial_seed(self) -> int:
        """The seed last given to :meth:`manual_seed` (or the start-up default)."""
        return self._seed

    def get_state(self) -> dict[str, Any]:
        """The stream's state (a dict; PyTorch returns a ByteTensor: docs/PORTING.md)."""
        return {"seed": self._seed, "bit_generator": self._rng.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> Generator:
        """Restore a state from :meth:`get_state`.

        Raises:
            ValueError: ``state`` is not a dict from ``get_state``.
        """
        if not isinstance(state, dict) or "bit_generator" not in state:
            raise ValueError("Generator.set_state: expected the dict returned by get_state()")
        self._rng.bit_generator.state = state["bit_generator"]
        self._seed = int(state.get("seed", self._seed))
        return self

    def __repr__(self) -> str:
        return f"<gradwise.Generator seed={self._seed}>"


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (``torch.manual_seed``); returns it."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the default generator from OS entropy; returns the seed."""
    return default_generator.seed()


def initial_seed() -> int:
    """The default generator's seed."""
    return default_generator.initial_seed()


def get_rng_state() -> dict[str, Any]:
    """The default generator's state (``torch.get_rng_state``)."""
    return default_generator.get_state()


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the default generator's state (``torch.set_rng_state``)."""
    default_generator.set_state(state)


def resolve(generator: Any = None, rng: Any = None, caller: str = "random") -> np.random.Generator:
    """The NumPy stream to draw from, given PyTorch's ``generator=`` or gradwise's ``rng=``.

    None (both): the default generator's stream. A ``gw.Generator`` or a numpy Generator: that
    stream (advanced by the draw). An int: a fresh stream seeded by it.

    Raises:
        TypeError: both are given, or something else was given (naming ``caller``).
    """
    if generator is not None and rng is not None:
        raise TypeError(f"{caller}: give generator= or its alias rng=, not both")
    source = generator if generator is not None else rng
    if source is None:
        return default_generator._rng
    if isinstance(source, Generator):
        return source._rng
    if isinstance(source, np.random.Generator):
        return source
    if isinstance(source, int | np.integer | np.random.SeedSequence) and not isinstance(
        source, bool
    ):
        return np.random.default_rng(source)
    raise TypeError(
        f"{caller}: generator/rng must be a gw.Generator, a numpy Generator or an int seed, "
        f"got {source!r}"
    )
