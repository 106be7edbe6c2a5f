// hls_stream.h - this project's C-simulation model of Vitis HLS's hls::stream, with bounded
// FIFOs, one thread per dataflow process and a deadlock detector.
//
// Synthesis (__SYNTHESIS__ defined): this header forwards to the vendor's own hls_stream.h with
// #include_next, so Vitis HLS always synthesizes its own stream class, and the HLS_DATAFLOW_*
// macros below expand to the plain sequential calls Vitis expects under #pragma HLS DATAFLOW.
// A layer source that uses the macros therefore needs this file's folder on the synthesis
// include path too (-I in the source's cflags). Do not copy the file beside the source and
// include it with quotes: #include_next would then search the whole path again. A source
// without the macros may be synthesized with or without it.
//
// C simulation (everything else): compile with this folder as -I and the Xilinx ap_types folder
// as -isystem (-I folders are searched first, so this header wins over hls4ml's copy that sits
// beside ap_int.h); hw_gen/cppsim.py does exactly that.
//
// Streams: `hls::stream<T>` is the base class and `hls::stream<T, DEPTH>` derives from it, as in
// Vitis HLS, so a process taking `hls::stream<T>&` accepts a stream of any depth. The depth is
// the FIFO capacity: write() blocks while DEPTH elements are queued, read() blocks while the FIFO
// is empty. `hls::stream<T>` (DEPTH 0) has Vitis's default depth, HLS_SIM_DEFAULT_DEPTH (2).
// C simulation cannot see `#pragma HLS STREAM depth=N`: state depths in the type.
// Testbench-side streams (top-level ports) must hold a whole run of data: the simulation-only
// constructor `hls::stream<T> s("name", capacity)` sets any capacity.
//
// Dataflow: inside a function with #pragma HLS DATAFLOW write
//     HLS_DATAFLOW_BEGIN("top");
//     HLS_DATAFLOW_PROCESS("read_in", read_in(in, s0));
//     HLS_DATAFLOW_PROCESS("compute", compute<PE, W>(s0, s1));
//     HLS_DATAFLOW_END();   // waits for every process of the region
// In simulation each process runs on its own thread (arguments are captured by reference), so
// FIFO depths behave as in hardware.
//
// Deadlock detection works on state, not on time. Live processes are the running processes of
// every dataflow region plus every other thread that uses streams (the testbench); a thread
// waiting in HLS_DATAFLOW_END is not live, a finished process is gone. When every live process is
// blocked on a stream whose state still blocks it (empty for a read, full for a write), nothing
// can ever change: the model prints one line per blocked process to stderr
//     HLS_SIM DEADLOCK process="top/join" op=read stream="delayed" state=empty size=0 depth=2
// and exits with HLS_SIM_EXIT_DEADLOCK. All streams share one mutex, and a process's wait
// condition is re-evaluated against the stream under that mutex, so a process whose data has
// arrived but which has not woken yet is never counted as blocked. Busy-polling with read_nb()
// or empty() never blocks, so a livelock is not detected: the harness's timeout catches it.
// Run concurrent code only through HLS_DATAFLOW_*: a thread started some other way becomes live
// only at its first stream call, and a deadlock check made before that would not know it.
//
// Other simulation errors (a process throwing, a testbench I/O error) print
//     HLS_SIM ERROR <message>
// and exit with HLS_SIM_EXIT_ERROR. A stream destroyed with unread data prints
//     HLS_SIM WARNING stream="name" destroyed holding N unread element(s)
// which the harness counts as a failure (production and consumption counts disagree).
#ifndef BNN_HLS_STREAM_H
#define BNN_HLS_STREAM_H

#ifdef __SYNTHESIS__

#include_next <hls_stream.h>
#define HLS_DATAFLOW_BEGIN(name)
#define HLS_DATAFLOW_PROCESS(name, ...) __VA_ARGS__
#define HLS_DATAFLOW_END()

#else  // C simulation

#if defined(X_HLS_STREAM_SIM_H) || defined(X_HLS_STREAM_H)
// Put templates/ first (-I) and the ap_types folder after it (-isystem).
#error "a vendor hls_stream.h was included before this project's templates/hls_stream.h"
#endif
// Vendor copies test these guards: a later #include of one of them becomes a no-op.
#define X_HLS_STREAM_SIM_H
#define X_HLS_STREAM_H

#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef HLS_SIM_DEFAULT_DEPTH
#define HLS_SIM_DEFAULT_DEPTH 2
#endif
#ifndef HLS_SIM_SPIN  // yields before a blocked call sleeps (3-5x faster with shallow FIFOs)
#define HLS_SIM_SPIN 16
#endif
#define HLS_SIM_EXIT_DEADLOCK 86
#define HLS_SIM_EXIT_ERROR 87

namespace hls_sim {

class fifo_base;

// One simulated process: a dataflow process's thread or another thread that uses streams.
struct process {
  std::string name;
  const fifo_base* waits_on = nullptr;  // stream it is blocked on, if any
  bool waits_to_read = false;
  explicit process(std::string n) : name(std::move(n)) {}
};

// Prints "HLS_SIM ERROR <message>" and ends the simulation with HLS_SIM_EXIT_ERROR.
[[noreturn]] inline void fatal(const std::string& message) {
  std::cout.flush();
  std::fflush(stdout);
  std::fprintf(stderr, "HLS_SIM ERROR %s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(HLS_SIM_EXIT_ERROR);
}

inline std::string quote_name(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += (c == '"' || c == '\n') ? '\'' : c;
  return out + "\"";
}

class fifo_base {
 public:
  fifo_base(std::string name, std::size_t capacity) : name_(std::move(name)), capacity_(capacity) {
    if (capacity_ == 0) fatal("stream " + quote_name(name_) + " needs a capacity of at least 1");
  }
  fifo_base(const fifo_base&) = delete;
  fifo_base& operator=(const fifo_base&) = delete;

  const std::string& name() const { return name_; }
  void set_name(const std::string& name) { name_ = name; }
  std::size_t capacity() const { return capacity_; }
  // The following read the state that the kernel mutex guards.
  std::size_t count() const { return count_; }
  bool blocks(bool to_read) const { return to_read ? count_ == 0 : count_ >= capacity_; }

 protected:
  // Both wait until the stream is readable (resp. writable); the lock holds kernel::mu.
  void wait_readable(std::unique_lock<std::mutex>& lock);
  void wait_writable(std::unique_lock<std::mutex>& lock);
  void pushed() {
    ++count_;
    if (readers_waiting_) readable_.notify_all();
  }
  void popped() {
    --count_;
    if (writers_waiting_) writable_.notify_all();
  }

 private:
  void wait(std::unique_lock<std::mutex>& lock, bool to_read);

  std::string name_;
  std::size_t capacity_;
  std::size_t count_ = 0;
  int readers_waiting_ = 0;
  int writers_waiting_ = 0;
  std::condition_variable readable_;
  std::condition_variable writable_;
};

// Global simulation state: the live processes and the one mutex that guards all streams.
class kernel {
 public:
  static kernel& get() {
    static kernel* instance = new kernel();  // never destroyed: streams may outlive statics
    return *instance;
  }

  std::mutex mu;

  // The calling thread's process; a thread seen for the first time becomes a live process
  // ("main" for the first one). Call with mu held.
  process* current_locked() {
    if (slot()) return slot();
    external_thread& ext = external();
    ext.proc.reset(new process(next_external_name()));
    slot() = ext.proc.get();
    add_live(slot());
    return slot();
  }
  static process*& slot() {
    thread_local process* current = nullptr;
    return current;
  }

  void add_live(process* p) { live_.push_back(p); }
  void remove_live(process* p) {
    for (std::size_t i = 0; i < live_.size(); ++i) {
      if (live_[i] == p) {
        live_[i] = live_.back();
        live_.pop_back();
        return;
      }
    }
  }

  // Reports and exits if every live process is blocked on a stream that still blocks it.
  // Call with mu held, after any change that can leave no live process able to run.
  void check_deadlock() {
    if (live_.empty()) return;
    for (const process* p : live_) {
      if (!p->waits_on || !p->waits_on->blocks(p->waits_to_read)) return;
    }
    std::cout.flush();
    std::fflush(stdout);
    std::fprintf(stderr, "HLS_SIM DEADLOCK all %zu live process(es) are blocked on streams\n",
                 live_.size());
    for (const process* p : live_) {
      const fifo_base* s = p->waits_on;
      std::fprintf(stderr,
                   "HLS_SIM DEADLOCK process=%s op=%s stream=%s state=%s size=%zu depth=%zu\n",
                   quote_name(p->name).c_str(), p->waits_to_read ? "read" : "write",
                   quote_name(s->name()).c_str(), p->waits_to_read ? "empty" : "full", s->count(),
                   s->capacity());
    }
    std::fflush(stderr);
    std::_Exit(HLS_SIM_EXIT_DEADLOCK);
  }

  std::string next_stream_name() { return "stream#" + std::to_string(unnamed_streams_++); }

 private:
  kernel() = default;

  // Owns the process record of a thread not started by a dataflow region; when that thread
  // ends, it stops being live.
  struct external_thread {
    std::unique_ptr<process> proc;
    ~external_thread() {
      if (!proc) return;
      kernel& k = kernel::get();
      std::lock_guard<std::mutex> lock(k.mu);
      k.remove_live(proc.get());
      k.check_deadlock();
    }
  };
  static external_thread& external() {
    thread_local external_thread ext;
    return ext;
  }
  std::string next_external_name() {
    return external_threads_++ == 0 ? "main" : "thread#" + std::to_string(external_threads_ - 1);
  }

  std::vector<process*> live_;
  int external_threads_ = 0;
  unsigned long unnamed_streams_ = 0;
};

inline void fifo_base::wait(std::unique_lock<std::mutex>& lock, bool to_read) {
  kernel& k = kernel::get();
  process* self = k.current_locked();
  // Yielding a few times first lets the other side run without a sleep and a wake-up; the
  // process does not count as blocked until it really waits.
  for (int spin = 0; spin < HLS_SIM_SPIN && blocks(to_read); ++spin) {
    lock.unlock();
    std::this_thread::yield();
    lock.lock();
  }
  if (!blocks(to_read)) return;
  int& waiting = to_read ? readers_waiting_ : writers_waiting_;
  std::condition_variable& cv = to_read ? readable_ : writable_;
  while (blocks(to_read)) {
    self->waits_on = this;
    self->waits_to_read = to_read;
    k.check_deadlock();
    ++waiting;
    cv.wait(lock);
    --waiting;
  }
  self->waits_on = nullptr;
}
inline void fifo_base::wait_readable(std::unique_lock<std::mutex>& lock) { wait(lock, true); }
inline void fifo_base::wait_writable(std::unique_lock<std::mutex>& lock) { wait(lock, false); }

template <typename T>
class fifo : public fifo_base {
 public:
  using fifo_base::fifo_base;
  ~fifo() {
    if (!items_.empty()) {
      std::fprintf(stderr, "HLS_SIM WARNING stream=%s destroyed holding %zu unread element(s)\n",
                   quote_name(name()).c_str(), items_.size());
    }
  }
  T read() {
    std::unique_lock<std::mutex> lock(kernel::get().mu);
    wait_readable(lock);
    return pop();
  }
  void write(const T& value) {
    std::unique_lock<std::mutex> lock(kernel::get().mu);
    wait_writable(lock);
    push(value);
  }
  bool read_nb(T& value) {
    std::unique_lock<std::mutex> lock(kernel::get().mu);
    kernel::get().current_locked();
    if (blocks(true)) return false;
    value = pop();
    return true;
  }
  bool write_nb(const T& value) {
    std::unique_lock<std::mutex> lock(kernel::get().mu);
    kernel::get().current_locked();
    if (blocks(false)) return false;
    push(value);
    return true;
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(kernel::get().mu);
    return count();
  }

 private:
  T pop() {
    T value = items_.front();
    items_.pop_front();
    popped();
    return value;
  }
  void push(const T& value) {
    items_.push_back(value);
    pushed();
  }
  std::deque<T> items_;
};

// The processes of one dataflow region, each on its own thread (see HLS_DATAFLOW_BEGIN).
class dataflow_region {
 public:
  explicit dataflow_region(const char* name) : name_(name) {
    kernel& k = kernel::get();
    std::lock_guard<std::mutex> lock(k.mu);
    owner_ = k.current_locked();
  }
  dataflow_region(const dataflow_region&) = delete;
  dataflow_region& operator=(const dataflow_region&) = delete;
  ~dataflow_region() { join(); }

  // Starts `body` (a callable without arguments) as the process "<region>/<name>".
  template <typename F>
  void spawn(const char* name, F body) {
    kernel& k = kernel::get();
    process* p;
    {
      std::lock_guard<std::mutex> lock(k.mu);
      if (joined_) fatal("dataflow region " + quote_name(name_) + ": process started after END");
      procs_.emplace_back(new process(name_ + "/" + name));
      p = procs_.back().get();
      k.add_live(p);  // live before its thread runs, so it counts as runnable
      ++running_;
    }
    threads_.emplace_back([this, p, body]() mutable { run(p, body); });
  }

  // Waits until every process of the region has returned.
  void join() {
    kernel& k = kernel::get();
    {
      std::unique_lock<std::mutex> lock(k.mu);
      if (joined_) return;
      joined_ = true;
      if (running_ > 0) {
        k.remove_live(owner_);
        owner_waits_ = true;
        k.check_deadlock();
        all_done_.wait(lock, [this] { return running_ == 0; });
        owner_waits_ = false;
      }
    }
    for (std::thread& t : threads_) t.join();
  }

 private:
  template <typename F>
  void run(process* p, F& body) {
    kernel::slot() = p;
    try {
      body();
    } catch (const std::exception& e) {
      fatal("process " + quote_name(p->name) + " threw: " + e.what());
    } catch (...) {
      fatal("process " + quote_name(p->name) + " threw a non-standard exception");
    }
    kernel& k = kernel::get();
    std::lock_guard<std::mutex> lock(k.mu);
    k.remove_live(p);
    if (--running_ == 0) {
      if (owner_waits_) k.add_live(owner_);  // live again before it wakes
      all_done_.notify_all();
    }
    k.check_deadlock();
  }

  std::string name_;
  process* owner_ = nullptr;
  std::vector<std::unique_ptr<process>> procs_;
  std::vector<std::thread> threads_;
  int running_ = 0;
  bool joined_ = false;
  bool owner_waits_ = false;
  std::condition_variable all_done_;
};

}  // namespace hls_sim

namespace hls {

// Vitis HLS's declaration: DEPTH 0 is the base class with the default depth.
template <typename T, int DEPTH = 0>
class stream;

template <typename T>
class stream<T, 0> {
 public:
  stream() : fifo_(unnamed(), HLS_SIM_DEFAULT_DEPTH) {}
  stream(const char* name) : fifo_(name, HLS_SIM_DEFAULT_DEPTH) {}
  // Simulation only (testbench ports): a stream holding up to `capacity` elements.
  stream(const char* name, std::size_t capacity) : fifo_(name, capacity) {}
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;

  T read() { return fifo_.read(); }
  void read(T& value) { value = fifo_.read(); }
  void write(const T& value) { fifo_.write(value); }
  bool read_nb(T& value) { return fifo_.read_nb(value); }
  bool write_nb(const T& value) { return fifo_.write_nb(value); }
  void operator>>(T& value) { value = fifo_.read(); }
  void operator<<(const T& value) { fifo_.write(value); }

  bool empty() { return fifo_.size() == 0; }
  bool full() { return fifo_.size() >= fifo_.capacity(); }
  std::size_t size() { return fifo_.size(); }
  std::size_t capacity() const { return fifo_.capacity(); }
  std::string get_name() const {
    std::lock_guard<std::mutex> lock(hls_sim::kernel::get().mu);
    return fifo_.name();
  }
  void set_name(const char* name) {
    std::lock_guard<std::mutex> lock(hls_sim::kernel::get().mu);
    fifo_.set_name(name);
  }

 protected:
  explicit stream(std::size_t capacity) : fifo_(unnamed(), capacity) {}

 private:
  static std::string unnamed() {
    hls_sim::kernel& k = hls_sim::kernel::get();
    std::lock_guard<std::mutex> lock(k.mu);
    return k.next_stream_name();
  }
  hls_sim::fifo<T> fifo_;
};

template <typename T, int DEPTH>
class stream : public stream<T, 0> {
  static_assert(DEPTH > 0, "hls::stream depth must be positive");

 public:
  stream() : stream<T, 0>(static_cast<std::size_t>(DEPTH)) {}
  stream(const char* name) : stream<T, 0>(name, static_cast<std::size_t>(DEPTH)) {}
};

}  // namespace hls

#define HLS_DATAFLOW_BEGIN(name) ::hls_sim::dataflow_region hls_sim_dataflow_region_(name)
#define HLS_DATAFLOW_PROCESS(name, ...) \
  hls_sim_dataflow_region_.spawn(name, [&]() { __VA_ARGS__; })
#define HLS_DATAFLOW_END() hls_sim_dataflow_region_.join()

#endif  // __SYNTHESIS__
#endif  // BNN_HLS_STREAM_H
