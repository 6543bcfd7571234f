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

}  // namespace
}  // namespace ambient::hbone
