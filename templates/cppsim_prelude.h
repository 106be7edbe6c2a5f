// cppsim_prelude.h - included first in every C-simulation translation unit (the harness passes
// -include cppsim_prelude.h); never part of synthesis.
//
// The Xilinx ap_types headers (hls4ml's copy, -isystem) read uninitialized words in
// ap_private's default constructor. GCC reports that at -O2 where the code is inlined, i.e. in
// our functions, so -isystem does not silence it and -Werror would fail our build. The
// diagnostic pragmas below turn the two warnings off for the vendor text only: GCC applies them
// by source location, so our own code keeps -Wuninitialized and -Wmaybe-uninitialized. Later
// #include <ap_int.h> / <ap_fixed.h> lines in layer sources hit the include guards.
// (Precompiling this header is not an option: GCC 12 drops the pragmas' effect from a .gch.)
#ifndef BNN_CPPSIM_PRELUDE_H
#define BNN_CPPSIM_PRELUDE_H

#ifdef __SYNTHESIS__
#error "cppsim_prelude.h is for C simulation only"
#endif

// The vendor default is 1024 bits, enforced only at run time; 32768 is the headers' ceiling.
#ifndef AP_INT_MAX_W
#define AP_INT_MAX_W 32768
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <ap_int.h>
#include <ap_fixed.h>
#pragma GCC diagnostic pop

#include "hls_stream.h"

#endif  // BNN_CPPSIM_PRELUDE_H
