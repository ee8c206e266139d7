"""Data-parallel compression: `torch.distributed.run` (torchrun) workers in their own process group
(vtrans/worker.py), progress relayed from rank 0, a cancel that asks them to stop together (a file flag) and
kills the group if they have not within 30 s."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from .errors import Cancelled, UserError
from .protocol import CompressResult
from .runs import RunDir, write_json
from .settings import CompressSettings

CANCEL_GRACE_S = 30


def compress_distributed(settings: CompressSettings, progress: Callable[[dict], None], should_stop: Callable[[], bool]) -> CompressResult:
    from .worker import PROGRESS_PREFIX

    os.makedirs(settings.run_dir, exist_ok=True)
    launch = os.path.join(settings.run_dir, "launch.json")
    write_json(launch, settings.to_json())
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={settings.gpus}",
        "-m",
        "vtrans.worker",
        launch,
    ]
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True, start_new_session=True, env=env)

    def relay() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(PROGRESS_PREFIX):
                progress(json.loads(line[len(PROGRESS_PREFIX) :]))

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    cancel_sent: float | None = None
    cancel_flag = os.path.join(settings.run_dir, ".cancel")
    while proc.poll() is None:
        if should_stop() and cancel_sent is None:
            open(cancel_flag, "w").close()
            cancel_sent = time.monotonic()
        if cancel_sent is not None and time.monotonic() - cancel_sent > CANCEL_GRACE_S:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
    reader.join(5)
    with contextlib.suppress(FileNotFoundError):
        os.remove(cancel_flag)
    run = RunDir(settings.run_dir)
    info = run.read() if run.exists() else None
    if info is not None and info.status == "done" and isinstance(info.result, CompressResult):
        return info.result
    if cancel_sent is not None:
        if info is not None:
            run.update(status="cancelled", pid=None)
        raise Cancelled()
    # A worker that dies (killed, out of memory) may take the others down before any of them records why.
    kept = os.path.isdir(run.checkpoints) and bool(os.listdir(run.checkpoints))
    reason = (
        f"a training worker stopped (torchrun exited with code {proc.returncode}: a worker was killed, ran out of "
        "memory or crashed; the log has its last lines)." + (" The checkpoints are kept: resume the run to continue." if kept else "")
    )
    if info is not None and info.status == "running":
        run.update(status="failed", error=reason, pid=None)
    raise UserError((info.error if info is not None else None) or reason)
