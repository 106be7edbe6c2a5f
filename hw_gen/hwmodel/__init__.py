"""The hardware model of a lowered graph: the dataflow graph with FINN's width converters and
FIFOs inserted (:mod:`.dataflow`), per-layer cycles and resources (:mod:`.estimate`), a
cycle-level model of the streams that sizes the FIFOs (:mod:`.schedule`, :mod:`.fifosim`),
and the folding search to a board (:mod:`.fold_search`)."""
