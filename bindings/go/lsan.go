package ambient

/*
// LeakSanitizer's entry point, present only when libasan is loaded (see
// scripts/test-bindings-asan.sh); weak, so NULL otherwise.
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static int ambientGoLeakCheck(void) {
  return __lsan_do_recoverable_leak_check ? __lsan_do_recoverable_leak_check() : -1;
}
*/
import "C"

// leakCheck runs LeakSanitizer now when the process has it (the ASan run of
// the tests): 1 if it found leaks (and printed them), 0 if none, -1 when
// LeakSanitizer is not loaded. Go exits without running the check that
// LeakSanitizer installs at exit, so the tests call this themselves.
func leakCheck() int { return int(C.ambientGoLeakCheck()) }
