"""cuDNN settings tutorials set for reproducibility; accepted, with no effect on the CPU."""

deterministic = True
benchmark = False
enabled = False


def is_available() -> bool:
    """False: no cuDNN."""
    return False
