"""Apple's Metal backend: not available in gradwise."""


def is_available() -> bool:
    """False: gradwise runs on the CPU only."""
    return False


def is_built() -> bool:
    """False: gradwise has no MPS backend."""
    return False
