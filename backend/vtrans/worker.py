"""One data-parallel training worker, started by `torch.distributed.run` (see distributed.py).

    python -m torch.distributed.run --standalone --nproc_per_node N -m vtrans.worker <launch.json>

launch.json holds the compress settings. Rank 0 prints progress as `VTRANS-PROGRESS <json>` lines on stdout
(the server relays them) and writes the run directory; the file `<run>/.cancel` asks every worker to stop.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import torch
import torch.distributed as dist

from .distributed import from_environment
from .errors import Cancelled, UserError
from .runs import RunDir
from .settings import parse_settings
from .train import Compressor

PROGRESS_PREFIX = "VTRANS-PROGRESS "


def failure_message(e: Exception, rank: int, world: int) -> str:
    """What run.json says when a worker fails; a collective broken by another worker's death is said as such."""
    text = f"{type(e).__name__}: {e}"
    lost_peer = world > 1 and isinstance(e, RuntimeError) and any(w in str(e) for w in ("gloo", "NCCL", "onnection"))
    if not lost_peer:
        return text
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    return (
        f"a training worker stopped (killed, or out of memory), and worker {rank} of {world} lost it during a "
        f"collective ({first}). The checkpoints are kept: resume the run to continue."
    )


def main(launch_file: str) -> int:
    logging.basicConfig(
        stream=sys.stderr, level=os.environ.get("VTRANS_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s [worker] %(message)s"
    )
    with open(launch_file, encoding="utf-8") as f:
        params = json.load(f)
    settings = parse_settings(params)
    place = from_environment()
    use_nccl = settings.device != "cpu" and torch.cuda.is_available() and torch.cuda.device_count() >= place.world
    dist.init_process_group("nccl" if use_nccl else "gloo")
    cancel_file = os.path.join(settings.run_dir, ".cancel")

    def progress(p: dict) -> None:
        sys.stdout.write(PROGRESS_PREFIX + json.dumps(p) + "\n")
        sys.stdout.flush()

    run = RunDir(settings.run_dir)
    code = 0
    try:
        Compressor(settings, progress, lambda: os.path.exists(cancel_file), dist=place).compress()
    except Cancelled:
        if place.main and run.exists():
            run.update(status="cancelled")
        code = 3
    except UserError as e:
        logging.getLogger("vtrans").error("worker %d: %s", place.rank, e)
        if place.main and run.exists():
            run.update(status="failed", error=str(e))
        code = 2
    except Exception as e:
        if place.main and run.exists():
            run.update(status="failed", error=failure_message(e, place.rank, place.world))
        raise
    finally:
        dist.destroy_process_group()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
