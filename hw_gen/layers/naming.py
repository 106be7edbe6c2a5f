"""C++-safe, collision-free names for what reaches our templates (node names become HLS top
functions, IP names and file names)."""

from __future__ import annotations

import re

from qonnx.core.modelwrapper import ModelWrapper

CPP_KEYWORDS = frozenset(
    """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char16_t
    char32_t class compl const constexpr const_cast continue decltype default delete do double
    dynamic_cast else enum explicit export extern false float for friend goto if inline int
    long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected
    public register reinterpret_cast return short signed sizeof static static_assert
    static_cast struct switch template this thread_local throw true try typedef typeid
    typename union unsigned using virtual void volatile wchar_t while xor xor_eq main""".split()
)


def c_identifier(name: str) -> str:
    """``name`` made a valid C++ identifier that the implementation does not reserve."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name or "node")
    ident = re.sub(r"_+", "_", ident).strip("_") or "node"
    if ident[0].isdigit():
        ident = "n_" + ident
    if ident in CPP_KEYWORDS:
        ident += "_node"
    return ident


def sanitize_node_names(model: ModelWrapper) -> dict[str, str]:
    """Rename every node to a unique C++ identifier; returns old -> new for renamed nodes."""
    used: set[str] = set()
    renamed = {}
    for node in model.graph.node:
        base = c_identifier(node.name)
        candidate, k = base, 1
        while candidate in used:
            k += 1
            candidate = f"{base}_{k}"
        used.add(candidate)
        if candidate != node.name:
            renamed[node.name] = candidate
            node.name = candidate
    return renamed
