"""Boards: FINN's part map, with each part's resources so utilisation reads against capacity."""

from __future__ import annotations

from dataclasses import dataclass

from hw_gen.errors import HwGenError

# Device resources from the vendors' product tables (BRAM counted as 36 Kb blocks).
PART_RESOURCES: dict[str, dict[str, int]] = {
    "xc7z020clg400-1": {"LUT": 53200, "FF": 106400, "BRAM_18K": 280, "URAM": 0, "DSP": 220},
    "xczu3eg-sbva484-1-e": {"LUT": 70560, "FF": 141120, "BRAM_18K": 432, "URAM": 0, "DSP": 360},
    "xczu3eg-sbva484-1-i": {"LUT": 70560, "FF": 141120, "BRAM_18K": 432, "URAM": 0, "DSP": 360},
    "xczu3eg-sfvc784-2-e": {"LUT": 70560, "FF": 141120, "BRAM_18K": 432, "URAM": 0, "DSP": 360},
    "xczu9eg-ffvb1156-2-e": {"LUT": 274080, "FF": 548160, "BRAM_18K": 1824, "URAM": 0,
                             "DSP": 2520},
    "xczu7ev-ffvc1156-2-e": {"LUT": 230400, "FF": 460800, "BRAM_18K": 624, "URAM": 96,
                             "DSP": 1728},
    "xczu28dr-ffvg1517-2-e": {"LUT": 425280, "FF": 850560, "BRAM_18K": 2160, "URAM": 80,
                              "DSP": 4272},
    "xczu48dr-ffvg1517-2-e": {"LUT": 425280, "FF": 850560, "BRAM_18K": 2160, "URAM": 80,
                              "DSP": 4272},
    "xck26-sfvc784-2LV-c": {"LUT": 117120, "FF": 234240, "BRAM_18K": 288, "URAM": 64,
                            "DSP": 1248},
    "xcu50-fsvh2104-2L-e": {"LUT": 872000, "FF": 1743000, "BRAM_18K": 2688, "URAM": 640,
                            "DSP": 5952},
    "xcu200-fsgd2104-2-e": {"LUT": 1182000, "FF": 2364000, "BRAM_18K": 4320, "URAM": 960,
                            "DSP": 6840},
    "xcu250-figd2104-2L-e": {"LUT": 1728000, "FF": 3456000, "BRAM_18K": 5376, "URAM": 1280,
                             "DSP": 12288},
    "xcu280-fsvh2892-2L-e": {"LUT": 1304000, "FF": 2607000, "BRAM_18K": 4032, "URAM": 960,
                             "DSP": 9024},
    "xcu55c-fsvh2892-2L-e": {"LUT": 1304000, "FF": 2607000, "BRAM_18K": 4032, "URAM": 960,
                             "DSP": 9024},
}

DEFAULT_BOARD = "Pynq-Z2"
URAM_BITS = 288 * 1024
BRAM_18K_BITS = 18 * 1024


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    resources: dict[str, int] | None

    @property
    def is_zynq(self) -> bool:
        from finn.util.basic import pynq_part_map

        return self.name in pynq_part_map


def known_boards() -> dict[str, str]:
    """Board name -> FPGA part, as FINN knows them."""
    from finn.util.basic import part_map

    return dict(part_map)


# Short names people type, beyond FINN's own names (matched without regard to case, '-' or '_').
BOARD_ALIASES = {"kv260": "KV260_SOM", "ultra96v2": "Ultra96-V2", "aupzu3": "AUP-ZU3_8GB"}


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def get_board(name: str) -> Board:
    """The board FINN knows as ``name``, matched without regard to case, ``-`` or ``_``
    (``pynq-z1``, ``zcu104``), or by a short name (``kv260``, ``ultra96v2``; ``Ultra96`` is
    the first-generation board)."""
    boards = known_boards()
    by_key = {_key(b): b for b in boards}
    by_key.update({k: v for k, v in BOARD_ALIASES.items() if v in boards})
    canonical = by_key.get(_key(name))
    if canonical is None:
        raise HwGenError(f"--board: unknown board '{name}'; known boards: "
                         f"{', '.join(sorted(boards))} (case does not matter; also "
                         f"{', '.join(sorted(BOARD_ALIASES))})")
    part = boards[canonical]
    return Board(canonical, part, PART_RESOURCES.get(part))
