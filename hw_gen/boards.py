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
    # Versal (AMD's product selection guide; DSP counts DSP58 slices)
    "xcve2802-vsvh1760-2MP-e-S": {"LUT": 520704, "FF": 1041408, "BRAM_18K": 1200, "URAM": 264,
                                  "DSP": 1312},
    "xcvc1902-vsva2197-2MP-e-S": {"LUT": 899840, "FF": 1799680, "BRAM_18K": 1934, "URAM": 463,
                                  "DSP": 1968},
    "xcv80-lsva4737-2MHP-e-s": {"LUT": 2574208, "FF": 5148416, "BRAM_18K": 7482, "URAM": 1301,
                                "DSP": 10848},
}

# Default fabric clock per board (MHz): what FINN's example builds close timing at on each
# family (Zynq-7000 -1 speed grade 100 MHz; Zynq UltraScale+ -1 150 MHz, -2 200 MHz;
# Alveo and Versal 200 MHz).
DEFAULT_CLOCK_MHZ: dict[str, int] = {
    "Pynq-Z1": 100, "Pynq-Z2": 100, "Ultra96": 150, "Ultra96-V2": 150, "AUP-ZU3_8GB": 200,
    "ZCU102": 200, "ZCU104": 200, "ZCU111": 200, "RFSoC2x2": 200, "RFSoC4x2": 200,
    "KV260_SOM": 200, "U50": 200, "U200": 200, "U250": 200, "U280": 200, "U55C": 200,
    "VEK280": 200, "VCK190": 200, "V80": 200,
}
# Width of the memory port the DMA engines use (bits per clock) where FINN's table for Zynq
# boards has none: 512-bit AXI on Alveo and Versal.
WIDE_MEMORY_PORT_BITS = 512

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

    @property
    def default_clock_mhz(self) -> int:
        return DEFAULT_CLOCK_MHZ.get(self.name, 100)

    @property
    def memory_port_bits(self) -> int:
        from finn.util.basic import pynq_native_port_width

        return pynq_native_port_width.get(self.name, WIDE_MEMORY_PORT_BITS)

    def shell_clock_ns(self, clk_ns: float) -> float:
        """The period the fabric really runs at: a Zynq shell's PS clock is set in whole MHz
        (FINN's shell truncates the requested frequency), other shells take the period."""
        if not self.is_zynq:
            return clk_ns
        mhz = int(1000.0 / clk_ns + 1e-9)
        if mhz < 1:
            raise HwGenError(f"clock period {clk_ns:g} ns is below 1 MHz")
        return 1000.0 / mhz


def resolve_clock_ns(board: Board, clock_ns: float | None = None,
                     clock_mhz: float | None = None) -> float:
    """The requested clock period (``--clock-ns`` or ``--clock-mhz``; the board's default when
    neither is given), as the shell will really run it."""
    if clock_ns is not None and clock_mhz is not None:
        raise HwGenError("give either --clock-ns or --clock-mhz, not both")
    for what, value in (("--clock-ns", clock_ns), ("--clock-mhz", clock_mhz)):
        if value is not None and not value > 0:
            raise HwGenError(f"{what} must be positive, not {value:g}")
    if clock_mhz is not None:
        clock_ns = 1000.0 / clock_mhz
    if clock_ns is None:
        clock_ns = 1000.0 / board.default_clock_mhz
    return board.shell_clock_ns(clock_ns)


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
