// A FIFO of bytes kept as a list of chunks, so that appending never moves
// bytes already queued and memory follows what is actually buffered. Used for
// the per-stream receive and send queues of an HBONE connection.
#ifndef AMBIENT_LIB_HBONE_BYTE_QUEUE_H_
#define AMBIENT_LIB_HBONE_BYTE_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>

#include "absl/types/span.h"

namespace ambient::hbone {

class ByteQueue {
 public:
  ByteQueue() = default;
  ByteQueue(const ByteQueue&) = delete;
  ByteQueue& operator=(const ByteQueue&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Append copies `data` to the back. Small appends fill the last chunk;
  // new chunks start at 1 KiB and grow with the amount queued (up to 64 KiB),
  // so an idle queue holds no memory and a busy one few chunks.
  void Append(absl::Span<const uint8_t> data);

  // Front returns the first contiguous run of queued bytes (empty if none).
  absl::Span<const uint8_t> Front() const;

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
  std::deque<Chunk> chunks_;
  size_t size_ = 0;
};

}  // namespace ambient::hbone

#endif  // AMBIENT_LIB_HBONE_BYTE_QUEUE_H_
