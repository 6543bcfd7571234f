// tests/support/sanitizer.h: AMBIENT_TEST_SANITIZED is 1 in a build under
// AddressSanitizer or ThreadSanitizer, with gcc (which defines
// __SANITIZE_ADDRESS__ / __SANITIZE_THREAD__) or clang (which answers
// __has_feature). Tests that measure memory or cap the address space skip or
// relax those checks there: the sanitizers' allocators keep their own pools
// and reserve terabytes of shadow memory.
#ifndef AMBIENT_TESTS_SUPPORT_SANITIZER_H_
#define AMBIENT_TESTS_SUPPORT_SANITIZER_H_

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define AMBIENT_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define AMBIENT_TEST_SANITIZED 1
#endif
#endif
#ifndef AMBIENT_TEST_SANITIZED
#define AMBIENT_TEST_SANITIZED 0
#endif

#endif  // AMBIENT_TESTS_SUPPORT_SANITIZER_H_
