package ambient

/*
#include <stdint.h>
#include "ambient/ambient.h"
void ambientGoSetAgentLog(ambient_zds_agent_options *opts, uintptr_t handle);
void ambientGoSetClock(ambient_verify_options *opts, uintptr_t handle);
*/
import "C"

import (
	"runtime/cgo"
	"time"
	"unsafe"
)

// LogLevel orders log lines by importance (ambient_log_level).
type LogLevel int

// The levels.
const (
	LogDebug LogLevel = C.AMBIENT_LOG_DEBUG
	LogInfo  LogLevel = C.AMBIENT_LOG_INFO
	LogWarn  LogLevel = C.AMBIENT_LOG_WARN
	LogError LogLevel = C.AMBIENT_LOG_ERROR
)

// String names the level.
func (l LogLevel) String() string {
	switch l {
	case LogDebug:
		return "debug"
	case LogInfo:
		return "info"
	case LogWarn:
		return "warn"
	case LogError:
		return "error"
	}
	return "unknown"
}

// LogFunc receives one log line from libambient (which never prints
// itself): its level, the component that wrote it ("zds", ...) and the
// message. It is called from libambient's threads; see the object that
// takes it for what it must not do.
type LogFunc func(level LogLevel, component, message string)

//export ambientGoLog
func ambientGoLog(userData unsafe.Pointer, level C.ambient_log_level, component *C.char, message *C.char, n C.size_t) {
	f, ok := cgo.Handle(uintptr(userData)).Value().(LogFunc)
	if !ok || f == nil {
		return
	}
	defer func() { _ = recover() }() // a panicking sink must not unwind into C
	f(LogLevel(level), C.GoString(component), C.GoStringN(message, C.int(n)))
}

// ambientGoDeleteHandle releases a handle libambient owned (a verifier
// clock's: called once, when the last verifier using it is gone).
//
//export ambientGoDeleteHandle
func ambientGoDeleteHandle(userData unsafe.Pointer) {
	cgo.Handle(uintptr(userData)).Delete()
}

//export ambientGoClock
func ambientGoClock(userData unsafe.Pointer) C.int64_t {
	f, ok := cgo.Handle(uintptr(userData)).Value().(func() time.Time)
	if !ok || f == nil {
		return C.int64_t(time.Now().Unix())
	}
	var t time.Time
	func() {
		defer func() { _ = recover() }() // a panicking clock must not unwind into C
		t = f()
	}()
	if t.IsZero() {
		t = time.Now()
	}
	return C.int64_t(t.Unix())
}
