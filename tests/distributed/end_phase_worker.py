"""Run under mpiexec -n 2: ``gradwise train ... --distributed`` (argv[1:]) with Ctrl-C reaching
every rank while rank 0 writes the figures, after training: as mpiexec forwards a Ctrl-C."""

import os
import signal
import sys
import time

from gradwise import cli
from gradwise import distributed as dist
from gradwise.runs import training

dist.init()
pids = dist.all_gather_json(os.getpid())
draw = training._write_figures


def interrupted_while_drawing(*args, **kwargs):
    for pid in pids:
        os.kill(pid, signal.SIGINT)
    time.sleep(0.5)  # the others are signalled while rank 0 is still writing
    return draw(*args, **kwargs)


if dist.get_rank() == 0:
    training._write_figures = interrupted_while_drawing
sys.exit(cli.main(sys.argv[1:]))
