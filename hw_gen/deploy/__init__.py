"""From a build to the board: the accelerator's I/O description (:mod:`.iodesc`), bitstreams
with their manifest (:mod:`.bitstream`) and the deploy package (:mod:`.package`)."""

from hw_gen.deploy.bitstream import BITSTREAMS_DIR, collect_bitstream, sha256

__all__ = ["BITSTREAMS_DIR", "collect_bitstream", "sha256"]
