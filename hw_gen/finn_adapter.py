"""The one module that knows how FINN (finn-plus) has to be started on this kind of machine.

Every other module of the project calls :func:`init_finn` before it imports anything from
``finn``; nothing else touches FINN's settings or works around its start-up quirks.

Without the Xilinx tools FINN's Python API needs four things (see docs/finn.md):

1. its global settings initialised by hand, with the build folder created;
2. ``finn.xsi.SimEngine = None`` before ``finn.builder`` is imported (the import otherwise
   asks for ``XILINX_VIVADO``);
3. ``XILINX_VIVADO`` set to a placeholder path ending in a version (a finished builder run
   otherwise crashes while writing its final report);
4. a raised ``verification_mean_rtol`` in builder configs (its mean-relative check reports
   false failures when expected outputs hold exact zeros); we compare integers ourselves.

3-4 are applied only when the vendor tools are absent, 2 whenever Vivado's simulator is (also
under the recording stand-ins of ``hw_gen.vendor``). Always, ``FINN_CUSTOM_HLS`` and
``FINN_RTLLIB`` are set as FINN's ``finn`` command sets them: its generated TCL reads them. FINN writes its build folder's path
into what it generates, so the build folder always lives inside the build's output folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

VIVADO_PLACEHOLDER = "/opt/Xilinx/Vivado-not-installed/2024.2"
VENDOR_TOOLS = ("vivado", "vitis_hls")
# Builder configs: FINN's mean relative error check, which our integer checks replace.
LENIENT_MEAN_RTOL = 1e9


@dataclass(frozen=True)
class ToolStatus:
    """Which vendor tools are on PATH, and where."""

    paths: dict[str, str | None]

    @property
    def complete(self) -> bool:
        return all(self.paths.values())

    def missing(self) -> list[str]:
        return [name for name, path in self.paths.items() if not path]


def vendor_tools() -> ToolStatus:
    """Locate Vivado and Vitis HLS on PATH."""
    return ToolStatus({name: shutil.which(name) for name in VENDOR_TOOLS})


_state: dict[str, Any] = {"build_dir": None}


def init_finn(build_dir: str | Path) -> Path:
    """Make FINN's Python API usable, with FINN's build folder at ``build_dir``.

    Idempotent; a later call moves the build folder. Returns the absolute build folder.
    """
    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    os.environ["FINN_BUILD_DIR"] = str(build)
    # qonnx's per-element sanitizer dominates FINN's Python execution time; our checks
    # compare integers themselves.
    os.environ.setdefault("SANITIZE_QUANT_TENSORS", "0")
    if not vendor_tools().complete:
        os.environ.setdefault("XILINX_VIVADO", VIVADO_PLACEHOLDER)
    if not (Path(os.environ["XILINX_VIVADO"]) / "bin" / "xelab").exists():
        # no Vivado simulator (no tools, or the recording stand-ins of hw_gen.vendor)
        import finn.xsi

        finn.xsi.SimEngine = None
    # FINN's `finn` command sets these; its generated TCL reads them (found by the vendor
    # stand-ins: without them every hls_syn_*.tcl and make_project.tcl fails in the tools)
    import finn

    finn_root = Path(finn.__file__).parent
    os.environ.setdefault("FINN_CUSTOM_HLS", str(finn_root / "custom_hls"))
    os.environ.setdefault("FINN_RTLLIB", str(finn_root / "finn-rtllib"))
    from finn.util import settings

    if _state["build_dir"] is None:
        settings.initialize_dummy_settings()
    settings.get_settings().finn_build_dir = build
    _state["build_dir"] = build
    import hw_gen.layers  # noqa: F401  (registers our layers with FINN)

    return build


def finn_build_dir() -> Path:
    """The current FINN build folder; :func:`init_finn` must have been called."""
    if _state["build_dir"] is None:
        raise RuntimeError("FINN is not initialised: call hw_gen.finn_adapter.init_finn(build_dir)")
    return _state["build_dir"]


def finn_hlslib_dir() -> Path | None:
    """finn-hlslib's folder if FINN's dependencies are installed here, else None."""
    from finn.util.settings import get_settings

    path = Path(get_settings().finn_deps) / "finn-hlslib"
    return path if (path / "mvau.hpp").exists() else None


def builder_config_overrides() -> dict[str, Any]:
    """Settings every FINN builder config we create must carry on this machine."""
    if vendor_tools().complete:
        return {}
    return {"verification_mean_rtol": LENIENT_MEAN_RTOL}


@contextlib.contextmanager
def finn_log(path: Path) -> Iterator[None]:
    """Send what FINN and qonnx print (progress chatter, warnings) to ``path``, not the console."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as log, contextlib.redirect_stdout(log), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        handler = logging.StreamHandler(log)
        root = logging.getLogger()
        saved = root.handlers[:]
        root.handlers = [handler]
        try:
            yield
        finally:
            root.handlers = saved
