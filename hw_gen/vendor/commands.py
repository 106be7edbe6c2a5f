"""Commands of Vitis HLS and Vivado (Tcl command references UG1399 and UG835) that the TCL
FINN and we generate may call. A dry run stubs exactly these; any other command that is not
plain Tcl fails the dry run, so a typo or an invented command cannot pass."""

VITIS_HLS = (
    "open_project", "close_project", "add_files", "set_top", "open_solution", "close_solution",
    "set_part", "create_clock", "set_clock_uncertainty", "csynth_design", "csim_design",
    "cosim_design", "export_design", "config_compile", "config_interface", "config_rtl",
    "config_export", "config_dataflow", "set_param", "set_directive_interface",
    "set_directive_pipeline", "set_directive_dataflow",
)

VIVADO = (
    # projects, files, runs
    "create_project", "open_project", "close_project", "current_project", "set_property",
    "get_property", "get_files", "add_files", "import_files", "read_verilog", "read_vhdl",
    "read_xdc", "update_compile_order", "current_fileset", "get_filesets", "create_fileset",
    "set_param", "set_msg_config", "version", "launch_runs", "wait_on_run", "get_runs",
    "reset_run", "create_run", "open_run", "synth_design", "opt_design", "place_design",
    "route_design", "write_bitstream", "write_checkpoint", "write_verilog", "write_edif",
    "write_xdc", "write_hw_platform", "report_utilization", "report_timing_summary",
    "report_power", "report_ip_status", "create_clock", "get_clocks", "get_ports", "get_cells",
    "get_pins", "get_nets", "set_false_path", "get_board_parts", "get_parts",
    # IP
    "update_ip_catalog", "get_ipdefs", "get_ips", "create_ip", "upgrade_ip", "generate_target",
    "config_ip_cache", "export_ip_user_files", "create_ip_run", "synth_ip",
    # block designs
    "create_bd_design", "current_bd_design", "open_bd_design", "close_bd_design",
    "create_bd_cell", "create_bd_pin", "create_bd_intf_pin", "create_bd_port",
    "create_bd_intf_port", "create_bd_net", "create_bd_intf_net", "connect_bd_net",
    "connect_bd_intf_net", "delete_bd_objs", "make_bd_pins_external",
    "make_bd_intf_pins_external", "get_bd_pins", "get_bd_intf_pins", "get_bd_cells",
    "get_bd_ports", "get_bd_intf_ports", "get_bd_nets", "get_bd_intf_nets", "get_bd_addr_segs",
    "get_bd_addr_spaces", "assign_bd_address", "include_bd_addr_seg", "exclude_bd_addr_seg",
    "validate_bd_design", "save_bd_design", "regenerate_bd_layout", "apply_bd_automation",
    "current_bd_instance", "make_wrapper", "get_bd_designs", "move_bd_cells",
    # IP packager
    "ipx::package_project", "ipx::current_core", "ipx::save_core", "ipx::create_xgui_files",
    "ipx::update_checksums", "ipx::check_integrity", "ipx::infer_bus_interface",
    "ipx::infer_bus_interfaces", "ipx::get_bus_interfaces", "ipx::associate_bus_interfaces",
    "ipx::get_file_groups", "ipx::remove_file", "ipx::add_file", "ipx::get_files",
    "ipx::merge_project_changes", "ipx::get_user_parameters", "ipx::add_user_parameter",
    "ipx::remove_user_parameter", "ipx::get_hdl_parameters", "ipx::remove_bus_interface",
    "ipx::get_ports", "ipx::add_bus_interface", "ipx::get_address_spaces",
    "ipx::add_file_group", "ipx::get_memory_maps", "ipx::remove_memory_map",
    "ipx::add_memory_map", "ipx::add_address_block", "ipx::get_address_blocks",
    "ipx::add_bus_parameter", "ipx::get_bus_parameters", "ipx::add_port_map",
    "ipx::get_port_maps", "ipx::remove_file_group", "ipx::create_core", "ipx::open_core",
    "ipx::edit_ip_in_project", "ipx::get_cores", "ipx::unload_core", "ipx::remove_all_bus_interface",
    "ipx::add_subcore", "ipx::update_source_project_archive", "ipx::get_user_files",
    "ipgui::get_guiparamspec", "ipgui::add_param", "ipgui::get_pagespec", "ipgui::remove_param",
    "ipx::find_open_core", "ipx::remove_segment", "ipx::get_segments", "ipx::add_segment",
    "get_param", "set_value",
)

# Tcl built-ins the scripts may use; everything else must be a vendor command above.
TCL_BUILTINS = (
    "set", "unset", "puts", "if", "else", "elseif", "for", "foreach", "while", "break",
    "continue", "expr", "incr", "append", "lappend", "lindex", "llength", "list", "lsort",
    "lsearch", "lrange", "lreplace", "join", "split", "string", "regexp", "regsub", "format",
    "file", "open", "close", "gets", "read", "eof", "glob", "proc", "return", "catch", "error",
    "info", "source", "exit", "array", "dict", "namespace", "global", "upvar", "variable",
    "switch", "after", "cd", "pwd", "exec", "clock", "concat", "eval", "subst", "uplevel",
    "fconfigure", "flush", "seek", "tell", "binary", "scan", "lassign", "lmap", "try", "throw",
    "rename", "package", "unknown",
)
