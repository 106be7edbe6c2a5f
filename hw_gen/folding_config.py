"""FINN folding configs (``--folding``): read and checked before they are applied.

A config is a JSON object: node name -> {attribute: value}, plus FINN's optional
``"Defaults"`` entry, ``{attribute: [value, [op types] or "all", ...]}`` (FINN's
``ApplyConfig``). :func:`read_folding_config` checks the form, before any slow work;
:func:`check_folding_config` checks it against the lowered graph: every node name exists and
is a hardware layer, every attribute is one of the layer's, every value is one the layer
accepts (its allowed set, a positive PE/SIMD dividing the dimension it folds, a parallel
sliding window only with SIMD = channels, HLS matrix-vector units with SIMD >= MW/1024, our
own layers' declared options). Each problem is one error naming the file, node, attribute and
value.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.errors import HwGenError
from hw_gen.folding import MVAU_MAX_SIMD_FOLD

DEFAULTS = "Defaults"
PARALLELISM = ("PE", "SIMD")
# FIFOs exist only after the build's ``fifo`` step inserts them; their entries wait for it.
FIFO_PREFIX = "StreamingFIFO"
FIFO_ATTRS = {"depth", "ram_style", "impl_style"}
# The dimension each folding attribute of FINN's layers must divide (by base op type).
DIVIDES = {
    "MVAU": {"PE": "MH", "SIMD": "MW"},
    "VVAU": {"PE": "Channels"},
    "Thresholding": {"PE": "NumChannels"},
    "ConvolutionInputGenerator": {"SIMD": "IFMChannels"},
    "FMPadding": {"SIMD": "NumChannels"},
    "LabelSelect": {"PE": "Labels"},
    "DuplicateStreams": {"PE": "NumChannels"},
    "AddStreams": {"PE": "NumChannels"},
    "ChannelwiseOp": {"PE": "NumChannels"},
    "Pool": {"PE": "Channels"},
    "GlobalAccPool": {"PE": "NumChannels"},
    "StreamingMaxPool": {"PE": "NumChannels"},
}


def read_folding_config(path: str | Path) -> dict:
    """The config in ``path``, its form checked (see the module doc)."""
    p = Path(path)
    where = f"--folding {p}"
    if not p.exists():
        raise HwGenError(f"{where}: file not found")
    if not p.is_file():
        raise HwGenError(f"{where}: not a file")
    try:
        config = json.loads(p.read_text())
    except UnicodeDecodeError:
        raise HwGenError(f"{where}: not a text file") from None
    except json.JSONDecodeError as exc:
        raise HwGenError(f"{where}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(config, dict):
        raise HwGenError(f"{where}: a JSON object of node name -> attributes is expected, not "
                         f"a {type(config).__name__}")
    if not config:
        raise HwGenError(f"{where}: the config is empty")
    for name, entry in config.items():
        if not isinstance(entry, dict):
            raise HwGenError(f"{where}: entry '{name}' must be an object of attributes, not "
                             f"{json.dumps(entry)}")
        if name == DEFAULTS:
            _check_defaults(entry, where)
        else:
            for attr_name, value in entry.items():
                _check_value_form(value, f"{where}: node {name}, attribute {attr_name}")
    return config


def _check_defaults(entry: dict, where: str) -> None:
    for attr_name, spec in entry.items():
        at = f"{where}: {DEFAULTS} attribute {attr_name}"
        if not isinstance(spec, list) or not spec or len(spec) % 2:
            raise HwGenError(f"{at}: expected [value, [op types] or \"all\", ...], not "
                             f"{json.dumps(spec)}")
        for value, ops in zip(spec[::2], spec[1::2]):
            _check_value_form(value, at)
            if not (ops == "all" or (isinstance(ops, list) and ops
                                     and all(isinstance(o, str) for o in ops))):
                raise HwGenError(f"{at}: op types must be a list of names or \"all\", not "
                                 f"{json.dumps(ops)}")


def _check_value_form(value, at: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, list)):
        raise HwGenError(f"{at}: value {json.dumps(value)} is not a number, string or list")


def _entries(config: dict, model: ModelWrapper) -> list[tuple[object, str, object, str]]:
    """(node, attribute, value, where it came from) for every setting the config makes."""
    nodes = {n.name: n for n in model.graph.node}
    out = []
    for attr_name, spec in config.get(DEFAULTS, {}).items():
        for value, ops in zip(spec[::2], spec[1::2]):
            for node in model.graph.node:
                if node.domain.startswith("finn.custom_op") and (ops == "all"
                                                                 or node.op_type in ops):
                    if attr_name not in config.get(node.name, {}):
                        out.append((node, attr_name, value, f"{DEFAULTS} {attr_name}"))
    for name, entry in config.items():
        if name == DEFAULTS:
            continue
        node = nodes.get(name)
        if node is None:
            hw = sorted(n.name for n in model.graph.node if n.domain.startswith("finn.custom_op"))
            raise HwGenError(f"node '{name}' is not in the lowered graph; its hardware layers "
                             f"are: {', '.join(hw)}")
        if not node.domain.startswith("finn.custom_op.fpgadataflow"):
            raise HwGenError(f"node '{name}' ({node.op_type}) is not a hardware layer; it has "
                             "nothing to fold")
        out += [(node, attr_name, value, f"node {name}") for attr_name, value in entry.items()]
    return out


def check_folding_config(config: dict, model: ModelWrapper, path: str | Path) -> None:
    """A one-line error for the first setting of ``config`` the lowered ``model`` cannot take."""
    where = f"--folding {path}"
    work = ModelWrapper(copy.deepcopy(model.model))
    by_name = {n.name: n for n in work.graph.node}
    touched = {}
    for node, attr_name, value, source in _entries(config, model):
        node = by_name[node.name]
        inst = getCustomOp(node)
        at = f"{where}: {source}, attribute {attr_name} of {node.name} ({node.op_type})"
        known = inst.get_nodeattr_types()
        if attr_name not in known:
            raise HwGenError(f"{at}: no such attribute; {node.op_type} has "
                             f"{', '.join(sorted(known))}")
        if attr_name in PARALLELISM and (not isinstance(value, int) or value < 1):
            raise HwGenError(f"{at}: {value!r} is not a positive whole number")
        try:
            inst.set_nodeattr(attr_name, value)
        except Exception as exc:  # qonnx asserts allowed values, raises on wrong types
            allowed = known[attr_name][3] if len(known[attr_name]) > 3 else None
            hint = f"; allowed: {sorted(allowed, key=str)}" if allowed else ""
            raise HwGenError(f"{at}: value {json.dumps(value)} is not accepted"
                             f"{hint} ({type(exc).__name__})") from None
        touched.setdefault(node.name, (node, set()))[1].add(source)
    for node, sources in touched.values():
        _check_layer(getCustomOp(node), node, where, sorted(sources))


def _check_layer(inst, node, where: str, sources: list[str]) -> None:
    set_by = "" if sources == [f"node {node.name}"] else f", set by {', '.join(sources)}"
    at = f"{where}: node {node.name} ({node.op_type}{set_by})"
    options = getattr(inst, "folding_options", None)
    if options is not None:
        for attr_name, values in options().items():
            if inst.get_nodeattr(attr_name) not in values:
                raise HwGenError(f"{at}: {attr_name} = {inst.get_nodeattr(attr_name)} is not "
                                 f"one of its legal values {list(values)}")
    attrs = inst.get_nodeattr_types()
    base = node.op_type.removesuffix("_hls").removesuffix("_rtl")
    for attr_name, dim in DIVIDES.get(base, {}).items():
        value, size = inst.get_nodeattr(attr_name), inst.get_nodeattr(dim)
        if size % value:
            raise HwGenError(f"{at}: {attr_name} = {value} does not divide {dim} = {size}; "
                             f"divisors: {[d for d in range(1, size + 1) if size % d == 0]}")
    if "parallel_window" in attrs and inst.get_nodeattr("parallel_window") == 1:
        channels = inst.get_nodeattr("IFMChannels")
        if inst.get_nodeattr("SIMD") != channels:
            raise HwGenError(f"{at}: a parallel sliding window (parallel_window = 1) needs "
                             f"SIMD = IFMChannels = {channels}, not {inst.get_nodeattr('SIMD')}")
    if node.op_type.startswith("MVAU") and node.op_type.endswith("_hls"):
        mw, simd = inst.get_nodeattr("MW"), inst.get_nodeattr("SIMD")
        if simd * MVAU_MAX_SIMD_FOLD < mw:
            raise HwGenError(f"{at}: SIMD = {simd} folds MW = {mw} more than the 1024 times "
                             "FINN's HLS matrix-vector unit allows")
    for getter in ("get_folded_input_shape", "get_folded_output_shape"):
        try:
            getattr(inst, getter)()
        except AssertionError as exc:
            dims = {k: inst.get_nodeattr(k) for k in attrs if k in PARALLELISM}
            raise HwGenError(f"{at}: {exc or 'folding does not divide its dimensions'} "
                             f"({', '.join(f'{k} = {v}' for k, v in dims.items())})") from None
        except (ZeroDivisionError, ValueError, TypeError) as exc:
            raise HwGenError(f"{at}: FINN cannot fold it so ({type(exc).__name__})") from None


def split_fifo_entries(config: dict, path: str | Path) -> tuple[dict, dict]:
    """(the entries of the lowered graph's layers, the entries of FIFOs), each FIFO entry's
    form checked: only FIFO attributes, a whole-number depth of at least 2."""
    layers, fifos = {}, {}
    for name, entry in config.items():
        if not name.startswith(FIFO_PREFIX):
            layers[name] = entry
            continue
        at = f"--folding {path}: FIFO {name}"
        unknown = sorted(set(entry) - FIFO_ATTRS)
        if unknown:
            raise HwGenError(f"{at}: no such FIFO attribute {', '.join(unknown)}; FIFOs take "
                             f"{', '.join(sorted(FIFO_ATTRS))}")
        depth = entry.get("depth")
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)
                                  or depth < 2):
            raise HwGenError(f"{at}: depth {json.dumps(depth)} is not a whole number of at "
                             "least 2")
        fifos[name] = entry
    return layers, fifos


def apply_folding_config(model: ModelWrapper, path: str | Path) -> ModelWrapper:
    """Check the config in ``path`` against ``model``, then apply it with FINN's ApplyConfig
    (FIFO entries are applied by the build's ``fifo`` step, once the FIFOs exist)."""
    from finn.transformation.general import ApplyConfig

    config, _ = split_fifo_entries(read_folding_config(path), path)
    check_folding_config(config, model, path)
    return model.transform(ApplyConfig(config))
