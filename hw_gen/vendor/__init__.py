"""The vendor flow without the vendor: recording stand-ins of Vitis HLS and Vivado
(:mod:`.standin`), dry runs of generated TCL in Python's Tcl (:mod:`.dryrun`) against the
lists of real tool commands (:mod:`.commands`)."""
