"""`python -m vtrans.torchrun ...`: torch.distributed.run (torchrun), with a fix for torch 1.13 on Python ≥ 3.11.

There, torchrun's `Std.from_str("0")` returns None (Python 3.11 no longer iterates the zero member of a Flag),
and every launch fails in `to_map`; the patch maps the values directly. Later torch versions are left alone.
"""
from __future__ import annotations

import re


def _patch_std() -> None:
    from torch.distributed.elastic.multiprocessing import api

    if api.Std.from_str("0") is not None:
        return

    def from_str(vm: str):
        if re.fullmatch(r"\d", vm):
            return api.Std(int(vm))
        return {int(i): api.Std(int(v)) for i, v in (m.split(":") for m in vm.split(","))}

    api.Std.from_str = classmethod(lambda cls, vm: from_str(vm))


if __name__ == "__main__":
    _patch_std()
    from torch.distributed.run import main

    main()
