#include "hbone/byte_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ambient::hbone {
namespace {

TEST(ByteQueueTest, KeepsOrderAcrossChunksAndFreesWhenEmpty) {
  ByteQueue q;
  std::string expect;
  for (int i = 0; i < 1000; ++i) {
    std::string piece(static_cast<size_t>(i % 97 + 1), static_cast<char>('a' + i % 26));
    q.Append(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(piece.data()), piece.size()));
    expect += piece;
  }
  EXPECT_EQ(q.size(), expect.size());
  std::string got;
  std::vector<uint8_t> buf(333);
  while (!q.empty()) {
    size_t n = q.CopyOut(absl::MakeSpan(buf));
    got.append(reinterpret_cast<char*>(buf.data()), n);
  }
  EXPECT_EQ(got, expect);
  EXPECT_TRUE(q.Front().empty());
}

TEST(ByteQueueTest, FrontAndConsumeWalkTheBytes) {
  ByteQueue q;
  std::vector<uint8_t> big(200000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  q.Append(big);
  size_t seen = 0;
  while (!q.empty()) {
    auto f = q.Front();
    ASSERT_FALSE(f.empty());
    for (size_t i = 0; i < f.size(); ++i) ASSERT_EQ(f[i], big[seen + i]);
    seen += f.size();
    q.Consume(f.size());
  }
  EXPECT_EQ(seen, big.size());
}

TEST(ByteQueueTest, AppendSpaceFillsInPlaceAndMixesWithAppend) {
  ChunkPool pool;
  ByteQueue q(&pool);
  std::string expect;
  uint8_t next = 0;
  size_t sizes[] = {1, 0, 7, 4096, 70000, 16384, 3, 200000, 0, 65536, 12};
  for (size_t want : sizes) {
    // Fill everything we are lent, or a part, or nothing.
    absl::Span<uint8_t> space = q.AppendSpace(want);
    if (want > 0) {
      ASSERT_FALSE(space.empty());
    }
    ASSERT_LE(space.size(), want);
    size_t used = want % 3 == 0 ? space.size() : space.size() / 2;
    for (size_t i = 0; i < used; ++i) {
      space[i] = next;
      expect.push_back(static_cast<char>(next++));
    }
    q.Commit(used);
    std::string piece(want % 5 + 1, 'z');
    q.Append(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(piece.data()), piece.size()));
    expect += piece;
    ASSERT_EQ(q.size(), expect.size());
  }
  // Lent but never filled leaves nothing behind.
  q.AppendSpace(100000);
  q.Commit(0);
  ASSERT_EQ(q.size(), expect.size());
  std::string got;
  absl::Span<const uint8_t> spans[4];
  while (!q.empty()) {
    size_t k = q.Peek(spans, 4);
    ASSERT_GT(k, 0u);
    for (size_t i = 0; i < k; ++i) ASSERT_FALSE(spans[i].empty());
    got.append(reinterpret_cast<const char*>(spans[0].data()), spans[0].size());
    q.Consume(spans[0].size());
  }
  EXPECT_EQ(got, expect);
  EXPECT_TRUE(q.Front().empty());
}

// Scatter fills: several runs per fill once reads are bulk-sized, partial
// and empty fills in between, mixed with Append; order and size stay exact,
// runs are never empty, and unused chunks go back to the pool.
TEST(ByteQueueTest, AppendSpacesFillsSeveralRunsInOrder) {
  ChunkPool pool;
  ByteQueue q(&pool);
  std::string expect;
  uint8_t next = 0;
  size_t max_runs = 0;
  size_t sizes[] = {1, 300000, 300000, 5, 0, 262144, 70000, 262144, 1, 262144, 100};
  for (int round = 0; round < 3; ++round) {
    for (size_t want : sizes) {
      absl::Span<uint8_t> runs[ByteQueue::kMaxSpaces];
      size_t n = q.AppendSpaces(want, runs, ByteQueue::kMaxSpaces);
      if (want > 0) {
        ASSERT_GT(n, 0u);
      }
      size_t lent = 0;
      for (size_t i = 0; i < n; ++i) {
        ASSERT_FALSE(runs[i].empty());
        lent += runs[i].size();
      }
      ASSERT_LE(lent, want);
      max_runs = std::max(max_runs, n);
      // Fill all, about two thirds (ending inside a later run), or nothing.
      size_t used = want % 3 == 0 ? lent : (want % 3 == 1 ? lent * 2 / 3 : 0);
      size_t left = used;
      for (size_t i = 0; i < n && left > 0; ++i) {
        size_t k = std::min(left, runs[i].size());
        for (size_t j = 0; j < k; ++j) {
          runs[i][j] = next;
          expect.push_back(static_cast<char>(next++));
        }
        left -= k;
      }
      q.CommitSpaces(absl::Span<const absl::Span<uint8_t>>(runs, n), used);
      ASSERT_EQ(q.size(), expect.size());
      std::string piece(want % 7 + 1, 'q');
      q.Append(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(piece.data()), piece.size()));
      expect += piece;
    }
  }
  EXPECT_GT(max_runs, 1u) << "bulk fills should be lent as several chunks";
  std::string got;
  absl::Span<const uint8_t> spans[4];
  while (!q.empty()) {
    size_t k = q.Peek(spans, 4);
    ASSERT_GT(k, 0u);
    for (size_t i = 0; i < k; ++i) ASSERT_FALSE(spans[i].empty()) << "no empty chunk left behind";
    got.append(reinterpret_cast<const char*>(spans[0].data()), spans[0].size());
    q.Consume(spans[0].size());
  }
  EXPECT_TRUE(got == expect);
  EXPECT_GT(pool.spare(), 0u);
}

// A trickle (small fills) is lent one small run at a time.
TEST(ByteQueueTest, AppendSpacesLendsOneRunForSmallFills) {
  ChunkPool pool;
  ByteQueue q(&pool);
  absl::Span<uint8_t> runs[ByteQueue::kMaxSpaces];
  size_t n = q.AppendSpaces(262144, runs, ByteQueue::kMaxSpaces);
  ASSERT_EQ(n, 1u);
  EXPECT_LE(runs[0].size(), 4096u);
  runs[0][0] = 'x';
  q.CommitSpaces(absl::Span<const absl::Span<uint8_t>>(runs, 1), 1);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.AppendSpaces(0, runs, ByteQueue::kMaxSpaces), 0u);
  q.CommitSpaces({}, 5);  // nothing lent: no effect
  EXPECT_EQ(q.size(), 1u);
}

}  // namespace
}  // namespace ambient::hbone
