"""The ``.hwh`` our fake device loads: a fixture we write (not one Vivado wrote), with the
Zynq PS and one FINN IODMA per port at the addresses Vivado's address editor would give."""

from __future__ import annotations

DMA_TEMPLATE = """\
    <MODULE FULLNAME="/{name}" INSTANCE="{name}" MODTYPE="{name}" VLNV="xilinx.com:hls:{name}:1.0">
      <PARAMETERS><PARAMETER NAME="C_S_AXI_CONTROL_ADDR_WIDTH" VALUE="6"/></PARAMETERS>
    </MODULE>
"""
RANGE_TEMPLATE = (
    '        <MEMRANGE ADDRESSBLOCK="Reg" BASENAME="C_S_AXI_CONTROL_BASEADDR" '
    'BASEVALUE="0x{base:08X}" HIGHNAME="C_S_AXI_CONTROL_HIGHADDR" HIGHVALUE="0x{high:08X}" '
    'INSTANCE="{name}" IS_DATA="TRUE" IS_INSTRUCTION="TRUE" MASTERBUSINTERFACE="M_AXI_GP0" '
    'MEMTYPE="REGISTER" SLAVEBUSINTERFACE="s_axi_control"/>\n')


AXILITE_INSTANCE = "StreamingDataflowPartition_1"
AXILITE_RANGE = (
    '        <MEMRANGE ADDRESSBLOCK="Reg" BASENAME="C_S_AXI_{intf}_BASEADDR" '
    'BASEVALUE="0x{base:08X}" HIGHNAME="C_S_AXI_{intf}_HIGHADDR" HIGHVALUE="0x{high:08X}" '
    'INSTANCE="{instance}" IS_DATA="TRUE" IS_INSTRUCTION="TRUE" MASTERBUSINTERFACE="M_AXI_GP0" '
    'MEMTYPE="REGISTER" SLAVEBUSINTERFACE="{intf}"/>\n')


def write_hwh(path, dma_names, base: int = 0x4000_0000, span: int = 0x1_0000,
              axilite: int = 0) -> None:
    """The PS, one IODMA per name and, for ``axilite`` runtime-writable layers, the
    accelerator's ``s_axilite_<i>`` interfaces (as FINN's stitched IP exposes them)."""
    ranges = "".join(RANGE_TEMPLATE.format(base=base + i * span, high=base + (i + 1) * span - 1,
                                           name=n) for i, n in enumerate(dma_names))
    first = base + len(dma_names) * span
    ranges += "".join(AXILITE_RANGE.format(
        base=first + i * span, high=first + (i + 1) * span - 1, intf=f"s_axilite_{i}",
        instance=AXILITE_INSTANCE) for i in range(axilite))
    clocks = "".join(
        f'        <PARAMETER NAME="PCW_FCLK{i}_PERIPHERAL_DIVISOR0" VALUE="5"/>\n'
        f'        <PARAMETER NAME="PCW_FCLK{i}_PERIPHERAL_DIVISOR1" VALUE="2"/>\n'
        f'        <PARAMETER NAME="PCW_FPGA_FCLK{i}_ENABLE" VALUE="{int(i == 0)}"/>\n'
        for i in range(4))
    modules = "".join(DMA_TEMPLATE.format(name=n)
                      for n in dma_names + ([AXILITE_INSTANCE] if axilite else []))
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<EDKSYSTEM EDWVERSION="1.2" TIMESTAMP="fixture" VIVADOVERSION="fixture (hw-gen test)">
  <EXTERNALPORTS/>
  <MODULES>
    <MODULE FULLNAME="/processing_system7_0" INSTANCE="processing_system7_0" MODTYPE="processing_system7" VLNV="xilinx.com:ip:processing_system7:5.5">
      <PARAMETERS>
{clocks}      </PARAMETERS>
      <MEMORYMAP>
{ranges}      </MEMORYMAP>
    </MODULE>
{modules}  </MODULES>
</EDKSYSTEM>
""")
