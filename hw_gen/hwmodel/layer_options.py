"""The settings the fold search may give one hardware layer: its folding (PE/SIMD) and its
memory options, each setting a dict of node attributes.

Memory does not fall as parallelism falls: a weight memory of PE*SIMD*W bits a word and
MW*MH/(PE*SIMD) words fills whole BRAM18 (up to 36 bits x 512) or URAM (72 bits x 4096)
blocks, so the least parallel folding of a large layer is its most wasteful (a 4608x512
binary layer at SIMD=6, PE=1 takes 96 URAM; at PE*SIMD=288, 8). The search therefore tries
every folding at least as fast as the cycle budget, up to ``PARALLELISM_SPAN`` times the
parallelism that meets it.

URAM cannot be initialised by the bitstream on UltraScale+ parts: FINN refuses URAM weights
there unless they are runtime-writable (``--runtime-weights``), so ``ultra`` is offered to a
matrix-vector unit only on Versal parts or when its weights are writable. Our own layers
keep only run-time data in their ``ram_style`` memories (attention's frame buffer), never
constants.
"""

from __future__ import annotations

import itertools
import math

from hw_gen.folding import MVAU_MAX_SIMD_FOLD
from hw_gen.layers.upsample import divisors

MVAU_MEMORY_OPTIONS = [  # (mem_mode, ram_style, resType) FINN's MVAU accepts
    ("internal_decoupled", "auto", "lut"),
    ("internal_decoupled", "block", "lut"),
    ("internal_decoupled", "distributed", "lut"),
    ("internal_decoupled", "ultra", "lut"),
    ("internal_embedded", "auto", "lut"),
    ("internal_decoupled", "auto", "dsp"),
]
PARALLELISM_SPAN = 8
MVAU_WEIGHT_BITS_PER_PE = 36  # SetFolding's mvau_wwidth_max: SIMD * weight bits per PE


def is_mvau(node) -> bool:
    return node.op_type.startswith("MVAU")


def _versal(part: str) -> bool:
    from finn.util.basic import is_versal

    return is_versal(part)


def memory_settings(node, inst, part: str, has_uram: bool) -> list[dict]:
    """The memory options of a layer (``[{}]`` for a layer without any)."""
    if is_mvau(node):
        ultra = has_uram and (_versal(part) or bool(inst.get_nodeattr("runtime_writeable_weights")))
        return [{"mem_mode": m, "ram_style": r, "resType": t}
                for m, r, t in MVAU_MEMORY_OPTIONS if r != "ultra" or ultra]
    if hasattr(inst, "folding_options") and "ram_style" in inst.get_nodeattr_types():
        return [{"ram_style": s} for s in ["block"] + (["ultra"] if has_uram else [])]
    return [{}]


def _folding_choices(node, inst) -> list[dict] | None:
    if is_mvau(node):
        mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
        wbits = inst.get_input_datatype(1).bitwidth()
        cap = max(MVAU_WEIGHT_BITS_PER_PE, inst.get_nodeattr("SIMD") * wbits)
        # cycles and the weight memory's shape depend on PE * SIMD only: per product, the
        # pairs with the most SIMD and the most PE (their LUTs differ)
        pairs = [(pe, simd) for pe in divisors(mh) for simd in divisors(mw)
                 if simd * MVAU_MAX_SIMD_FOLD >= mw and simd * wbits <= cap]
        kept = {}
        for pe, simd in pairs:
            kept.setdefault(pe * simd, set()).add((pe, simd))
        return [{"PE": pe, "SIMD": simd} for product in sorted(kept)
                for pe, simd in sorted({min(kept[product]), max(kept[product])})]
    options = getattr(inst, "folding_options", None)
    if options is None:
        return None
    opts = options()
    return [dict(zip(opts, combo)) for combo in itertools.product(*opts.values())]


def folding_settings(node, inst, budget_cycles: int,
                     span: float = PARALLELISM_SPAN) -> list[dict]:
    """The foldings of a matrix-vector unit or one of our layers within ``budget_cycles`` a
    frame, up to ``span`` times the current parallelism (``[{}]``: keep it)."""
    choices = _folding_choices(node, inst)
    if choices is None:
        return [{}]
    current = {a: inst.get_nodeattr(a) for a in choices[0]}
    most = span * math.prod(current.values())
    fast = []
    for choice in choices:
        if math.prod(choice.values()) > most:
            continue
        apply(inst, choice)
        if inst.get_exp_cycles() <= budget_cycles:
            fast.append(choice)
    apply(inst, current)
    return fast or [{}]


def apply(inst, settings: dict) -> None:
    for attr, value in settings.items():
        inst.set_nodeattr(attr, value)
