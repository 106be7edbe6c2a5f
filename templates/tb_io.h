// tb_io.h - testbench I/O for C simulation: int64 files <-> streams of packed ap_uint words.
//
// File format (written and read by hw_gen/cppsim.py): raw little-endian int64, one value per
// tensor element, in stream order (the C order of the NHWC tensor; channels innermost). Nothing
// else is in the file; the element count is the file size / 8.
//
// Word format (FINN's): a stream word ap_uint<PE*W> holds PE consecutive elements; element k
// sits at bits [k*W, (k+1)*W), LSB first; a signed element is two's complement in its W bits.
//
// Errors (unreadable file, value outside the element type, wrong count, unread output) print
// "HLS_SIM ERROR <message>" and exit with HLS_SIM_EXIT_ERROR.
#ifndef BNN_TB_IO_H
#define BNN_TB_IO_H

#ifdef __SYNTHESIS__
#error "tb_io.h is for C-simulation testbenches only"
#endif

#include <ap_int.h>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "hls_stream.h"

namespace tb_io {

inline std::vector<int64_t> read_int64_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) hls_sim::fatal("cannot open input file " + hls_sim::quote_name(path));
  std::vector<int64_t> values;
  unsigned char bytes[8];
  std::size_t got;
  while ((got = std::fread(bytes, 1, 8, f)) == 8) {
    uint64_t u = 0;
    for (int b = 7; b >= 0; --b) u = (u << 8) | bytes[b];
    values.push_back(static_cast<int64_t>(u));
  }
  std::fclose(f);
  if (got != 0) hls_sim::fatal("file " + hls_sim::quote_name(path) + " has a partial int64");
  return values;
}

inline void write_int64_file(const std::string& path, const std::vector<int64_t>& values) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) hls_sim::fatal("cannot create output file " + hls_sim::quote_name(path));
  for (int64_t v : values) {
    uint64_t u = static_cast<uint64_t>(v);
    unsigned char bytes[8];
    for (int b = 0; b < 8; ++b) bytes[b] = static_cast<unsigned char>(u >> (8 * b));
    if (std::fwrite(bytes, 1, 8, f) != 8) {
      hls_sim::fatal("cannot write " + hls_sim::quote_name(path));
    }
  }
  if (std::fclose(f) != 0) hls_sim::fatal("cannot write " + hls_sim::quote_name(path));
}

// Bit mask and value range of a W-bit element (W % 64 keeps every shift below 64).
template <int W, bool SIGNED>
struct element_type {
  static_assert(W >= 1 && W <= (SIGNED ? 64 : 63), "element width: 1..64 signed, 1..63 unsigned");
  static uint64_t mask() { return W == 64 ? ~uint64_t(0) : (uint64_t(1) << (W % 64)) - 1; }
  static int64_t lo() { return SIGNED ? -static_cast<int64_t>(mask() >> 1) - 1 : 0; }
  static int64_t hi() { return static_cast<int64_t>(SIGNED ? mask() >> 1 : mask()); }
};

// Packs values[0..PE) into one word; every value must fit the element type.
template <int W, int PE, bool SIGNED>
ap_uint<W * PE> pack(const int64_t* values) {
  typedef element_type<W, SIGNED> type;
  ap_uint<W * PE> word = 0;
  for (int k = 0; k < PE; ++k) {
    const int64_t v = values[k];
    if (v < type::lo() || v > type::hi()) {
      hls_sim::fatal("value " + std::to_string(v) + " does not fit a " + (SIGNED ? "" : "u") +
                     "int" + std::to_string(W) + " element");
    }
    word.range((k + 1) * W - 1, k * W) = ap_uint<W>(static_cast<uint64_t>(v) & type::mask());
  }
  return word;
}

// Unpacks one word into values[0..PE), sign-extending signed elements.
template <int W, int PE, bool SIGNED>
void unpack(const ap_uint<W * PE>& word, int64_t* values) {
  for (int k = 0; k < PE; ++k) {
    const ap_uint<W> field = word.range((k + 1) * W - 1, k * W);
    uint64_t bits = field.to_uint64();
    if (SIGNED && ((bits >> (W - 1)) & 1)) bits |= ~element_type<W, SIGNED>::mask();
    values[k] = static_cast<int64_t>(bits);
  }
}

// Writes the elements of the int64 file `path` into `s`, PE per word; returns the word count.
// The stream must have room for all of them (testbench streams: hls::stream<T>(name, capacity)).
template <int W, int PE, bool SIGNED>
std::size_t file_to_stream(const std::string& path, hls::stream<ap_uint<W * PE> >& s) {
  const std::vector<int64_t> values = read_int64_file(path);
  if (values.size() % PE != 0) {
    hls_sim::fatal("file " + hls_sim::quote_name(path) + " holds " + std::to_string(values.size()) +
                   " values, not a multiple of PE=" + std::to_string(PE));
  }
  const std::size_t words = values.size() / PE;
  if (s.capacity() - s.size() < words) {
    hls_sim::fatal("stream " + hls_sim::quote_name(s.get_name()) + " has room for " +
                   std::to_string(s.capacity() - s.size()) + " words, " +
                   hls_sim::quote_name(path) + " needs " + std::to_string(words) +
                   ": construct it as hls::stream<T>(name, " + std::to_string(words) + ")");
  }
  for (std::size_t i = 0; i < words; ++i) s.write(pack<W, PE, SIGNED>(&values[i * PE]));
  return words;
}

// Reads exactly `words` words from `s` (blocking), writes their elements to `path`, and fails
// if `s` still holds data afterwards (the design produced more than expected).
template <int W, int PE, bool SIGNED>
void stream_to_file(hls::stream<ap_uint<W * PE> >& s, std::size_t words, const std::string& path) {
  std::vector<int64_t> values(words * PE);
  for (std::size_t i = 0; i < words; ++i) unpack<W, PE, SIGNED>(s.read(), &values[i * PE]);
  write_int64_file(path, values);
  if (!s.empty()) {
    hls_sim::fatal("stream " + hls_sim::quote_name(s.get_name()) + " holds " +
                   std::to_string(s.size()) + " word(s) beyond the " + std::to_string(words) +
                   " expected");
  }
}

}  // namespace tb_io

#endif  // BNN_TB_IO_H
