"""Helpers shared by the benchmark scripts (not part of advlib)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine_info(device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["load_avg"] = os.getloadavg()
    except OSError:
        pass
    return info


def write_result(name: str, device, result: dict) -> Path:
    """benchmarks/results/<name>-<device type>.json, printed relative to the repository."""
    out = Path(__file__).resolve().parent / "results" / f"{name}-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(out.parents[2])}")
    return out


def parse_setting(text: str, keys: dict, defaults: dict | None = None) -> dict:
    """``"key=value,key=value"`` -> dict, each value converted by ``keys[key]``; unknown keys exit."""
    out = dict(defaults or {})
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key not in keys:
            raise SystemExit(f"--setting {text!r}: unknown key {key!r}; expected {sorted(keys)}")
        out[key] = keys[key](value)
    return out
