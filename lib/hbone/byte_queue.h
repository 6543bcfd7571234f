// A FIFO of bytes kept as a list of chunks, so that appending never moves
// bytes already queued and memory follows what is actually buffered. Used for
// the per-stream receive and send queues of an HBONE connection.
#ifndef AMBIENT_LIB_HBONE_BYTE_QUEUE_H_
#define AMBIENT_LIB_HBONE_BYTE_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/types/span.h"

namespace ambient::hbone {

// ChunkPool keeps a few freed full-size chunks for reuse, so a queue that
// fills and empties over and over (bulk transfer) does not make the
// allocator return memory to the kernel and fault it back in each time.
// Release() gives everything back (an idle connection calls it).
class ChunkPool {
 public:
  static constexpr size_t kChunk = 64 * 1024;
  explicit ChunkPool(size_t max_spare = 8) : max_spare_(max_spare) {}
  std::unique_ptr<uint8_t[]> Get() {
    if (spare_.empty()) return std::unique_ptr<uint8_t[]>(new uint8_t[kChunk]);
    std::unique_ptr<uint8_t[]> c = std::move(spare_.back());
    spare_.pop_back();
    return c;
  }
  void Put(std::unique_ptr<uint8_t[]> c) {
    if (spare_.size() < max_spare_) spare_.push_back(std::move(c));
  }
  void Release() { std::vector<std::unique_ptr<uint8_t[]>>().swap(spare_); }
  size_t spare() const { return spare_.size(); }

 private:
  size_t max_spare_;
  std::vector<std::unique_ptr<uint8_t[]>> spare_;
};

class ByteQueue {
 public:
  // `pool` (optional, must outlive the queue) recycles full-size chunks.
  explicit ByteQueue(ChunkPool* pool = nullptr) : pool_(pool) {}
  ~ByteQueue() { Clear(); }
  ByteQueue(const ByteQueue&) = delete;
  ByteQueue& operator=(const ByteQueue&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Append copies `data` to the back. Small appends fill the last chunk;
  // new chunks start at 1 KiB and grow with the amount queued (up to 64 KiB),
  // so an idle queue holds no memory and a busy one few chunks.
  void Append(absl::Span<const uint8_t> data);

  // AppendSpace lends writable room at the back (at most `max` bytes, not
  // empty when max > 0) for the caller to fill in place; Commit(n) then
  // queues the first n bytes of it (n may be 0). Nothing else may touch the
  // queue in between. Chunk sizes follow how full the previous fills were:
  // a trickle stays in small chunks, bulk reads reach 64 KiB pooled chunks.
  absl::Span<uint8_t> AppendSpace(size_t max);
  void Commit(size_t n);
  // AppendSpaces is AppendSpace for scatter reads (readv): lends up to `max`
  // bytes of room as up to `n` runs (n <= kMaxSpaces) in `out`, the back
  // chunk's room first, then new chunks; returns how many runs.
  // CommitSpaces(runs, k), given exactly those runs back, queues the first k
  // bytes of them in order and gives back new chunks left empty. Nothing
  // else may touch the queue in between. (The queue keeps no state for this:
  // it is per stream, and idle streams must stay small.)
  static constexpr size_t kMaxSpaces = 8;
  size_t AppendSpaces(size_t max, absl::Span<uint8_t>* out, size_t n);
  void CommitSpaces(absl::Span<const absl::Span<uint8_t>> runs, size_t k);

  // Front returns the first contiguous run of queued bytes (empty if none).
  absl::Span<const uint8_t> Front() const;

  // Peek lends up to `max` contiguous runs from the front, in order, into
  // `out`; returns how many it filled.
  size_t Peek(absl::Span<const uint8_t>* out, size_t max) const;

  // Consume drops the first `n` bytes (n <= size()).
  void Consume(size_t n);

  // CopyOut copies up to out.size() bytes from the front into `out`, drops
  // them, and returns how many were copied.
  size_t CopyOut(absl::Span<uint8_t> out);

  // Clear drops everything and releases the memory.
  void Clear();

 private:
  struct Chunk {
    std::unique_ptr<uint8_t[]> data;
    size_t capacity = 0;
    size_t begin = 0;
    size_t end = 0;
  };
  void Drop(Chunk& c);
  // A new chunk at the back: `want` bytes clamped to 1-64 KiB, rounded up to
  // a power of two.
  Chunk& PushChunk(size_t want);
  ChunkPool* pool_;
  std::deque<Chunk> chunks_;
  size_t fill_hint_ = 1024;  // next AppendSpace chunk size
  size_t lent_ = 0;          // size of the span AppendSpace lent last
  size_t size_ = 0;
};

}  // namespace ambient::hbone

#endif  // AMBIENT_LIB_HBONE_BYTE_QUEUE_H_
