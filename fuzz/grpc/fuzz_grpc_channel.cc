// Fuzzes grpc::Channel with arbitrary server bytes: two calls are open (one
// unary with a deadline, one bidi), the input follows the server's SETTINGS
// (so the fuzzer starts at the frames after the preface), split where its
// first byte says; then time runs past every deadline. Nothing may crash or
// leak, and every call must end with exactly one kClosed event.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "ambient/grpc/channel.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ambient::grpc::CallEvent;
  absl::Time now = absl::FromUnixSeconds(1000);
  ambient::grpc::ChannelOptions o;
  o.authority = "istiod.istio-system.svc:15012";
  o.max_receive_message = 4096;
  auto ch = ambient::grpc::Channel::New(o, now);
  if (!ch.ok()) __builtin_trap();
  auto a = (*ch)->StartCall("/test.Echo/Unary", now + absl::Seconds(1), {}, now);
  auto b = (*ch)->StartCall("/test.Echo/Bidi", absl::InfiniteFuture(), {{"x", "y"}}, now);
  if (!a.ok() || !b.ok()) __builtin_trap();
  (void)(*ch)->SendMessage(*a, "hello", now);
  (void)(*ch)->CloseSend(*a, now);
  (void)(*ch)->SendMessage(*b, "one", now);
  (*ch)->ConsumeOutput((*ch)->PendingOutput().size());

  static const char kSettings[] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
  std::string in(kSettings, sizeof(kSettings));
  size_t split = size > 0 ? data[0] : 0;
  if (size > 0) in.append(reinterpret_cast<const char*>(data) + 1, size - 1);
  split = std::min(split + sizeof(kSettings), in.size());
  (void)(*ch)->Receive(absl::string_view(in).substr(0, split), now);
  (void)(*ch)->SendMessage(*b, "two", now);
  (void)(*ch)->Receive(absl::string_view(in).substr(split), now);
  (*ch)->ConsumeOutput((*ch)->PendingOutput().size());
  (*ch)->OnTimeout(now + absl::Seconds(2));
  (*ch)->OnTimeout(now + absl::Minutes(5));
  (*ch)->ReceiveEof(now + absl::Minutes(5));

  std::map<int32_t, int> closed;
  CallEvent e;
  while ((*ch)->PollEvent(&e)) {
    if (e.kind == CallEvent::Kind::kClosed) ++closed[e.call];
    if (e.kind == CallEvent::Kind::kMessage && e.message.size() > o.max_receive_message) {
      __builtin_trap();
    }
  }
  if (closed[*a] != 1 || closed[*b] != 1) __builtin_trap();
  if ((*ch)->open_calls() != 0) __builtin_trap();
  return 0;
}
