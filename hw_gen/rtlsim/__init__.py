"""RTL simulation without vendor tools: FINN's RTL layers (finn-rtllib) compiled with Verilator,
driven by our C++ testbench with the integers sim says reach them, compared with sim.

``layer`` (sources and ports of one layer), ``verilator`` (compile, cache), ``testbench``
(render, pack, run), ``check`` (one layer against sim, cycles), ``coverage`` (who checks
which layer), ``step`` (the build step ``rtlsim``).
"""
