#include "hbone/byte_queue.h"

#include <algorithm>
#include <cstring>

namespace ambient::hbone {

namespace {
constexpr size_t kMinChunk = 1024;
constexpr size_t kMaxChunk = 64 * 1024;
}  // namespace

void ByteQueue::Append(absl::Span<const uint8_t> data) {
  while (!data.empty()) {
    if (chunks_.empty() || chunks_.back().end == chunks_.back().capacity) {
      // Grow chunk sizes with the amount queued: 1 KiB for a trickle,
      // 64 KiB for bulk transfer.
      PushChunk(std::max(size_, data.size()));
    }
    Chunk& c = chunks_.back();
    size_t n = std::min(c.capacity - c.end, data.size());
    std::memcpy(c.data.get() + c.end, data.data(), n);
    c.end += n;
    size_ += n;
    data.remove_prefix(n);
  }
}

absl::Span<uint8_t> ByteQueue::AppendSpace(size_t max) {
  lent_ = 0;
  if (max == 0) return {};
  if (!chunks_.empty()) {
    Chunk& b = chunks_.back();
    size_t free = b.capacity - b.end;
    // Use the back chunk's room unless it is a sliver of a bulk read.
    if (free > 0 && (free >= max || free >= 4096 || b.capacity < ChunkPool::kChunk)) {
      lent_ = std::min(free, max);
      return absl::Span<uint8_t>(b.data.get() + b.end, lent_);
    }
  }
  Chunk& b = PushChunk(std::min(max, fill_hint_));
  lent_ = std::min(b.capacity, max);
  return absl::Span<uint8_t>(b.data.get(), lent_);
}

ByteQueue::Chunk& ByteQueue::PushChunk(size_t want) {
  want = std::max(kMinChunk, std::min(kMaxChunk, want));
  // A power of two, for the allocator (and the pool's 64 KiB chunks).
  size_t cap = kMinChunk;
  while (cap < want) cap <<= 1;
  Chunk c;
  if (pool_ != nullptr && cap == ChunkPool::kChunk) {
    c.data = pool_->Get();
  } else {
    c.data.reset(new uint8_t[cap]);
  }
  c.capacity = cap;
  chunks_.push_back(std::move(c));
  return chunks_.back();
}

size_t ByteQueue::AppendSpaces(size_t max, absl::Span<uint8_t>* out, size_t n) {
  n = std::min(n, kMaxSpaces);
  if (max == 0 || n == 0) return 0;
  size_t k = 0;
  if (!chunks_.empty()) {
    Chunk& b = chunks_.back();
    size_t free = b.capacity - b.end;
    // As AppendSpace: the back chunk's room unless it is a sliver.
    if (free > 0 && (free >= max || free >= 4096 || b.capacity < ChunkPool::kChunk)) {
      size_t take = std::min(free, max);
      out[k++] = absl::Span<uint8_t>(b.data.get() + b.end, take);
      max -= take;
    }
  }
  while (k < n && max > 0) {
    Chunk& c = PushChunk(std::min(max, fill_hint_));
    size_t take = std::min(c.capacity, max);
    out[k++] = absl::Span<uint8_t>(c.data.get(), take);
    max -= take;
    // More than one new chunk only in bulk mode (fills have reached full
    // 64 KiB chunks): a trickle gets one small chunk, as with AppendSpace.
    if (fill_hint_ < kMaxChunk) break;
  }
  return k;
}

void ByteQueue::CommitSpaces(absl::Span<const absl::Span<uint8_t>> runs, size_t k) {
  if (runs.empty() || runs.size() > chunks_.size()) return;
  // The runs are the room of the last runs.size() chunks, in order (the
  // first may be the end of a chunk that already held bytes).
  size_t lent = 0;
  for (const absl::Span<uint8_t>& r : runs) lent += r.size();
  k = std::min(k, lent);
  size_t committed = k;
  size_t first = chunks_.size() - runs.size();
  for (size_t i = 0; i < runs.size(); ++i) {
    Chunk& c = chunks_[first + i];
    size_t take = std::min(k, runs[i].size());
    c.end += take;
    size_ += take;
    k -= take;
  }
  // New chunks nothing was read into are given back at once (a chunk that
  // was already there holds bytes, so it is never empty here).
  for (size_t i = 0; i < runs.size() && chunks_.back().end == chunks_.back().begin; ++i) {
    Drop(chunks_.back());
    chunks_.pop_back();
  }
  if (committed == lent) {
    fill_hint_ = std::min(kMaxChunk, fill_hint_ * 2);
  } else if (committed < lent / 2) {
    fill_hint_ = std::max(kMinChunk, fill_hint_ / 2);
  }
}

void ByteQueue::Commit(size_t n) {
  if (chunks_.empty()) return;
  n = std::min(n, lent_);
  Chunk& b = chunks_.back();
  b.end += n;
  size_ += n;
  if (lent_ > 0) {
    if (n == lent_) {
      fill_hint_ = std::min(kMaxChunk, std::max(fill_hint_, lent_) * 2);
    } else if (n < lent_ / 2) {
      fill_hint_ = std::max(kMinChunk, fill_hint_ / 2);
    }
  }
  lent_ = 0;
  if (b.end == b.begin) {
    // An unused new chunk is given back at once.
    Drop(b);
    chunks_.pop_back();
  }
}

absl::Span<const uint8_t> ByteQueue::Front() const {
  if (chunks_.empty()) return {};
  const Chunk& c = chunks_.front();
  return absl::Span<const uint8_t>(c.data.get() + c.begin, c.end - c.begin);
}

size_t ByteQueue::Peek(absl::Span<const uint8_t>* out, size_t max) const {
  size_t i = 0;
  for (const Chunk& c : chunks_) {
    if (i == max) break;
    if (c.end == c.begin) continue;
    out[i++] = absl::Span<const uint8_t>(c.data.get() + c.begin, c.end - c.begin);
  }
  return i;
}

void ByteQueue::Consume(size_t n) {
  n = std::min(n, size_);
  size_ -= n;
  while (n > 0) {
    Chunk& c = chunks_.front();
    size_t k = std::min(n, c.end - c.begin);
    c.begin += k;
    n -= k;
    if (c.begin == c.end) {
      Drop(c);
      chunks_.pop_front();
    }
  }
  if (size_ == 0) {
    for (Chunk& c : chunks_) Drop(c);
    chunks_.clear();
  }
}

void ByteQueue::Drop(Chunk& c) {
  if (pool_ != nullptr && c.capacity == ChunkPool::kChunk && c.data) pool_->Put(std::move(c.data));
}

size_t ByteQueue::CopyOut(absl::Span<uint8_t> out) {
  size_t copied = 0;
  while (copied < out.size() && size_ > 0) {
    absl::Span<const uint8_t> f = Front();
    size_t n = std::min(f.size(), out.size() - copied);
    std::memcpy(out.data() + copied, f.data(), n);
    copied += n;
    Consume(n);
  }
  return copied;
}

void ByteQueue::Clear() {
  for (Chunk& c : chunks_) Drop(c);
  std::deque<Chunk>().swap(chunks_);
  size_ = 0;
}

}  // namespace ambient::hbone
