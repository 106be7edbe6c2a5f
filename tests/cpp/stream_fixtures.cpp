// Fixtures for hls_stream.h and tb_io.h; argv[1] picks one. Each reads in.bin, writes out.bin.
//
// pack: int4 elements, PE 3 -> the 12-bit words tb_io packs them into (as uint12 values).
// unpack: uint12 words -> the int4 elements tb_io unpacks from them (PE 3).
// The others read uint16 elements (PE 1):
// forkjoin_ok / forkjoin_deadlock: fork duplicates the input into `a` and `b`; delay holds
// DELAY elements of `b` before emitting each one + 1 on `d`; join reads `a` and `d` alternately
// and writes both. join needs d[0], which needs b[DELAY], which fork writes only after a[DELAY]:
// `a` must hold DELAY elements. Depth DELAY passes, DELAY - 1 deadlocks.
// chain: six processes joined by depth-1 FIFOs, each adds 1.
// nested: the testbench feeds and drains through depth-2 streams while the design runs, with
// the chain as a dataflow region nested inside a dataflow process.
// overread: the testbench reads one word more than the design writes (main blocks on `out`).
// leftover: the design reads one word less than the testbench wrote (`in` keeps it).
// throws: a process throws. livelock: a process polls read_nb() on a stream nobody writes.
// api: copies in to out through every stream call Vitis HLS code uses (out = in).
#include <stdexcept>
#include <string>

#include "tb_io.h"

typedef ap_uint<16> word_t;
typedef hls::stream<word_t> stream_t;
const int DELAY = 8;
const int CHAIN = 6;

void fork_process(stream_t& in, stream_t& a, stream_t& b, unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    const word_t v = in.read();
    a.write(v);
    b.write(v);
  }
}

void delay_process(stream_t& b, stream_t& d, unsigned n) {
  word_t held[DELAY];
  for (unsigned i = 0; i < n; ++i) {
    const word_t v = b.read();
    if (i >= DELAY) d.write(held[i % DELAY] + 1);
    held[i % DELAY] = v;
  }
  for (unsigned i = n > DELAY ? n - DELAY : 0; i < n; ++i) d.write(held[i % DELAY] + 1);
}

void join_process(stream_t& a, stream_t& d, stream_t& out, unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    out.write(a.read());
    out.write(d.read());
  }
}

template <int DEPTH_A>
void forkjoin(stream_t& in, stream_t& out, unsigned n) {
#pragma HLS DATAFLOW
  hls::stream<word_t, DEPTH_A> a("a");
  hls::stream<word_t, 2> b("b");
  hls::stream<word_t, 2> d("d");
  HLS_DATAFLOW_BEGIN("forkjoin");
  HLS_DATAFLOW_PROCESS("fork", fork_process(in, a, b, n));
  HLS_DATAFLOW_PROCESS("delay", delay_process(b, d, n));
  HLS_DATAFLOW_PROCESS("join", join_process(a, d, out, n));
  HLS_DATAFLOW_END();
}

void add_one(stream_t& in, stream_t& out, unsigned n) {
  for (unsigned i = 0; i < n; ++i) out.write(in.read() + 1);
}

void chain(stream_t& in, stream_t& out, unsigned n) {
#pragma HLS DATAFLOW
  hls::stream<word_t, 1> s[CHAIN - 1];
  for (int i = 0; i < CHAIN - 1; ++i) s[i].set_name(("s" + std::to_string(i)).c_str());
  HLS_DATAFLOW_BEGIN("chain");
  HLS_DATAFLOW_PROCESS("stage0", add_one(in, s[0], n));
  HLS_DATAFLOW_PROCESS("stage1", add_one(s[0], s[1], n));
  HLS_DATAFLOW_PROCESS("stage2", add_one(s[1], s[2], n));
  HLS_DATAFLOW_PROCESS("stage3", add_one(s[2], s[3], n));
  HLS_DATAFLOW_PROCESS("stage4", add_one(s[3], s[4], n));
  HLS_DATAFLOW_PROCESS("stage5", add_one(s[4], out, n));
  HLS_DATAFLOW_END();
}

void thrower(stream_t& in, stream_t& out, unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    if (i == n / 2) throw std::runtime_error("element " + std::to_string(i) + " rejected");
    out.write(in.read());
  }
}

void poller(stream_t& never_written) {
  word_t v;
  while (!never_written.read_nb(v)) {
  }
}

struct pair_t {
  ap_uint<16> value;
  ap_int<3> tag;
};

// Stream calls as Vitis HLS code writes them; `mid` may be a stream of any depth.
void api_split(stream_t& in, hls::stream<pair_t>& mid, unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    word_t v;
    if (i % 2) {
      in >> v;
    } else {
      in.read(v);
    }
    pair_t p;
    p.value = v;
    p.tag = -1;
    if (i % 3 == 0) {
      if (!mid.write_nb(p)) mid.write(p);
    } else {
      mid << p;
    }
  }
}

void api_merge(hls::stream<pair_t>& mid, stream_t& out, unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    pair_t p;
    if (mid.empty() || !mid.read_nb(p)) p = mid.read();
    if (p.tag != -1) hls_sim::fatal("struct element corrupted");
    out.write(p.value);
  }
}

void api(stream_t& in, stream_t& out, unsigned n) {
  hls::stream<pair_t, 3> mid("mid");
  hls::stream<word_t, 4> lanes[2];
  lanes[0].set_name("lane0");
  if (mid.capacity() != 3 || lanes[1].capacity() != 4 || !mid.empty() || mid.full() ||
      mid.get_name() != "mid" || lanes[0].get_name() != "lane0") {
    hls_sim::fatal("stream properties wrong");
  }
  lanes[0].write(1);
  lanes[0].write(2);
  if (lanes[0].size() != 2 || lanes[0].read() != 1 || lanes[0].read() != 2) {
    hls_sim::fatal("FIFO order wrong");
  }
  for (int k = 0; k < 4; ++k) lanes[1] << word_t(k);
  word_t v;
  if (!lanes[1].full() || lanes[1].write_nb(9) || lanes[0].read_nb(v)) {
    hls_sim::fatal("non-blocking calls wrong");
  }
  while (lanes[1].read_nb(v)) {
  }
  HLS_DATAFLOW_BEGIN("api");
  HLS_DATAFLOW_PROCESS("split", api_split(in, mid, n));
  HLS_DATAFLOW_PROCESS("merge", api_merge(mid, out, n));
  HLS_DATAFLOW_END();
}

// Copies between a file-sized testbench stream and a design port, word by word.
void pump(stream_t& from, stream_t& to, unsigned n) {
  for (unsigned i = 0; i < n; ++i) to.write(from.read());
}

// The word layout of tb_io (element k at bits [4k, 4k+4), two's complement), both directions.
bool layout_fixture(const std::string& fixture) {
  const std::vector<int64_t> values = tb_io::read_int64_file("in.bin");
  std::vector<int64_t> result;
  if (fixture == "pack") {
    for (std::size_t i = 0; i + 3 <= values.size(); i += 3) {
      result.push_back(static_cast<int64_t>(tb_io::pack<4, 3, true>(&values[i]).to_uint64()));
    }
  } else if (fixture == "unpack") {
    result.resize(3 * values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      tb_io::unpack<4, 3, true>(ap_uint<12>(static_cast<uint64_t>(values[i])), &result[3 * i]);
    }
  } else {
    return false;
  }
  tb_io::write_int64_file("out.bin", result);
  return true;
}

int main(int argc, char** argv) {
  if (argc != 2) hls_sim::fatal("usage: csim <fixture>");
  const std::string fixture = argv[1];
  if (layout_fixture(fixture)) return 0;
  const std::vector<int64_t> values = tb_io::read_int64_file("in.bin");
  const unsigned n = static_cast<unsigned>(values.size());
  stream_t in("in", n);
  stream_t out("out", 2 * n);
  tb_io::file_to_stream<16, 1, false>("in.bin", in);

  if (fixture == "forkjoin_ok") {
    forkjoin<DELAY>(in, out, n);
    tb_io::stream_to_file<16, 1, false>(out, 2 * n, "out.bin");
  } else if (fixture == "forkjoin_deadlock") {
    forkjoin<DELAY - 1>(in, out, n);
    tb_io::stream_to_file<16, 1, false>(out, 2 * n, "out.bin");
  } else if (fixture == "chain") {
    chain(in, out, n);
    tb_io::stream_to_file<16, 1, false>(out, n, "out.bin");
  } else if (fixture == "nested") {
    stream_t dut_in("dut_in");
    stream_t dut_out("dut_out");
    stream_t result("result", n);
    HLS_DATAFLOW_BEGIN("tb");
    HLS_DATAFLOW_PROCESS("feed", pump(in, dut_in, n));
    HLS_DATAFLOW_PROCESS("dut", chain(dut_in, dut_out, n));
    HLS_DATAFLOW_PROCESS("drain", pump(dut_out, result, n));
    HLS_DATAFLOW_END();
    tb_io::stream_to_file<16, 1, false>(result, n, "out.bin");
  } else if (fixture == "overread") {
    chain(in, out, n);
    tb_io::stream_to_file<16, 1, false>(out, n + 1, "out.bin");
  } else if (fixture == "leftover") {
    chain(in, out, n - 1);
    tb_io::stream_to_file<16, 1, false>(out, n - 1, "out.bin");
  } else if (fixture == "throws") {
    HLS_DATAFLOW_BEGIN("throws");
    HLS_DATAFLOW_PROCESS("thrower", thrower(in, out, n));
    HLS_DATAFLOW_END();
  } else if (fixture == "api") {
    api(in, out, n);
    tb_io::stream_to_file<16, 1, false>(out, n, "out.bin");
  } else if (fixture == "livelock") {
    stream_t never_written("never_written");
    HLS_DATAFLOW_BEGIN("livelock");
    HLS_DATAFLOW_PROCESS("poller", poller(never_written));
    HLS_DATAFLOW_END();
  } else {
    hls_sim::fatal("unknown fixture " + fixture);
  }
  return 0;
}
