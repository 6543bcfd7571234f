package ambient

import (
	"testing"
	"time"
)

// BenchmarkLoopDo measures one operation on a running loop from another
// goroutine (what every method of a server, client or forwarder costs on
// top of its C call): an empty function run on the loop's thread.
func BenchmarkLoopDo(b *testing.B) {
	l, err := NewLoop()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.do(func() {}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoopDoParallel is BenchmarkLoopDo from several goroutines at once.
func BenchmarkLoopDoParallel(b *testing.B) {
	l, err := NewLoop()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.do(func() {}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLoopDoIdle is one operation on a loop that was left alone for
// 2 ms before (waiting in epoll), the usual case for a control-plane call.
func BenchmarkLoopDoIdle(b *testing.B) {
	l, err := NewLoop()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		time.Sleep(2 * time.Millisecond)
		b.StartTimer()
		if err := l.do(func() {}); err != nil {
			b.Fatal(err)
		}
	}
}
