"""``python tests/train_killed.py STEP ARGS...``: ``picosam2 ARGS...`` (a training run) whose process
kills itself (SIGKILL, no clean-up) right after optimizer step STEP: a power cut in the middle of
training, for the resume test. The product has no such switch; it is added here from outside."""

from __future__ import annotations

import os
import signal
import sys


def main() -> int:
    import lightning as L

    from picosam2.cli import main as cli_main
    from picosam2.train import fit

    step = int(sys.argv[1])

    class KillSwitch(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == step:
                os.kill(os.getpid(), signal.SIGKILL)

    callbacks = fit._callbacks
    fit._callbacks = lambda cfg, out: [*callbacks(cfg, out), KillSwitch()]
    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
