"""`python -m pipeline doctor`: one screen of what this environment can train on."""

from __future__ import annotations

from components.trainer import devices
from pipeline.environment import gpu

MODES = {
    "rootfs": "rootfs (the Debian 13 root filesystem entered by tools/in-env; the host's NVIDIA driver mounted "
              "in when it has one)",
    "venv": "venv (the host's Python and libraries)",
    "image": "image (the project's container image)",
    "system Python": "system Python (no project environment: make setup makes one)",
}


def render(report: gpu.GpuReport, profile: str) -> str:
    lines = [f"Environment:   {MODES.get(report.mode, report.mode)}",
             f"TensorFlow:    {report.tensorflow_version}, " + (
                 f"built for CUDA {report.built_for_cuda} and cuDNN {report.built_for_cudnn}"
                 if report.cuda_build else "a CPU-only build"),
             "CUDA libraries:"]
    for library in report.libraries:
        where = f"loaded from {library.path}" if library.path else f"not found ({library.error})"
        lines.append(f"  {library.name:<13} {library.file:<16} {where}")
    lines.append(f"NVIDIA driver: {driver_text(report.driver)}")
    lines.append("GPUs TensorFlow sees: " + ("none" if not report.gpus else str(len(report.gpus))))
    for index, found in enumerate(report.gpus):
        by_default = "on" if devices.use_mixed_precision("auto", (found,)) else "off"
        lines.append(f"  GPU {index}: {found.name}, compute capability {devices.capability_text(found.capability)} "
                     f"(mixed precision {by_default} by default)")
    plural = "s" if report.needed > 1 else ""
    if report.usable:
        lines.append(f"Verdict:       the {profile} profile's Trainer trains on {report.needed} GPU{plural}")
    else:
        lines.append(f"Verdict:       no usable GPU for the {profile} profile's Trainer ({report.needed} GPU{plural}): "
                     f"{report.reason}")
        lines.append(f"Fix:           {report.fix}")
    return "\n".join(lines)


def driver_text(driver: gpu.Driver) -> str:
    if driver.path is None:
        return f"none found ({gpu.DRIVER_LIBRARY} is not on the dynamic linker's path)"
    version = ", ".join(part for part in (
        f"version {driver.version}" if driver.version else "",
        f"supports CUDA {driver.cuda_version}" if driver.cuda_version else "") if part)
    return f"found at {driver.path}{f' ({version})' if version else ''}, cuInit: {driver.cuinit}"
