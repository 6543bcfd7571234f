// Memory per workload: how many heap bytes the workload directory holds per
// workload once a ztunnel-sized push (bench/xds/push.h: N workloads + 1,000
// services) went in through xds::AddressHandler, next to the serialized
// istio.workload.Address bytes of the same resources (what istiod sends), so
// the ratio is what the in-memory model costs over the wire form.
//
//   memory_bench ROUNDS WORKLOADS...   (services: 1,000)
//
// Heap bytes are glibc's mallinfo2() in-use bytes (uordblks + hblkhd) after
// the push minus before it, the push's own buffers already allocated, so the
// figure counts exactly what the directory (and the handler) keep. One JSON
// line per round and size on stdout:
//   {"workloads": N, "services": S, "heap_bytes": B, "wire_bytes": W, "rss_bytes": R}
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ambient/runtime/workload_directory.h"
#include "push.h"

namespace {

size_t HeapInUse() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

size_t Rss() {
  std::ifstream f("/proc/self/statm");
  size_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

int Measure(int workloads, int services) {
  std::vector<ambient::xds::ResourceUpdate> push = ambient::bench_xds::Push(workloads, services);
  size_t wire = 0;
  for (const ambient::xds::ResourceUpdate& u : push) wire += u.value.size();
  malloc_trim(0);
  size_t heap0 = HeapInUse(), rss0 = Rss();
  auto dir = std::make_unique<ambient::runtime::WorkloadDirectory>();
  {
    ambient::xds::AddressHandler h(dir.get());
    std::vector<ambient::xds::Rejection> r = h.Apply(push, {});
    if (!r.empty()) {
      std::fprintf(stderr, "memory_bench: rejected %s: %s\n", r[0].first.c_str(),
                   r[0].second.c_str());
      return 1;
    }
  }
  if (dir->size() == 0) {
    std::fprintf(stderr, "memory_bench: the directory stayed empty\n");
    return 1;
  }
  size_t heap1 = HeapInUse(), rss1 = Rss();
  std::printf(
      "{\"workloads\": %d, \"services\": %d, \"heap_bytes\": %zu, \"wire_bytes\": %zu, "
      "\"rss_bytes\": %ld}\n",
      workloads, services, heap1 - heap0, wire,
      static_cast<long>(rss1) - static_cast<long>(rss0));
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: memory_bench ROUNDS WORKLOADS...\n");
    return 2;
  }
  int rounds = std::atoi(argv[1]);
  for (int r = 0; r < rounds; ++r) {
    for (int i = 2; i < argc; ++i) {
      if (Measure(std::atoi(argv[i]), 1000) != 0) return 1;
    }
  }
  return 0;
}
