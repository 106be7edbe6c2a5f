"""Errors the build reports to users as one line (the CLI prints them without a traceback)."""


class HwGenError(Exception):
    """A user-facing build error; the message names the node, layer or parameter at fault."""


class UnmappedNodesError(HwGenError):
    """Nodes that no lowering step could turn into hardware layers."""

    def __init__(self, nodes: list[tuple[str, str]], where: str) -> None:
        self.nodes = nodes
        listed = ", ".join(f"{name} ({op})" for name, op in nodes)
        super().__init__(f"{where}: {len(nodes)} node(s) left unmapped: {listed}")


class DataTypeCheckError(HwGenError):
    """A hardware layer whose declared data types cannot hold the values it must carry."""
