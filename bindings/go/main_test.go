package ambient

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestMain runs the tests, then, under LeakSanitizer
// (scripts/test-bindings-asan.sh), lets finalizers release what tests left
// to them and fails the run if C memory is still unreachable.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		for i := 0; i < 3; i++ {
			runtime.GC()
			time.Sleep(20 * time.Millisecond) // finalizers run on their own goroutine
		}
		switch leakCheck() {
		case 1:
			fmt.Fprintln(os.Stderr, "FAIL: LeakSanitizer found leaks (above)")
			code = 1
		case 0:
			fmt.Println("LeakSanitizer: no leaks")
		}
	}
	os.Exit(code)
}
