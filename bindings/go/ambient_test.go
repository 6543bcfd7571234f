package ambient

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"testing"
)

func TestVersionMatchesHeaders(t *testing.T) {
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(Version()) {
		t.Fatalf("Version() = %q", Version())
	}
	if Version() != HeaderVersion() {
		t.Fatalf("library %s, headers %s", Version(), HeaderVersion())
	}
}

func TestTLSBackend(t *testing.T) {
	b := TLSBackend()
	if b != "boringssl" && b != "openssl" {
		t.Fatalf("TLSBackend() = %q", b)
	}
	if want := os.Getenv("AMBIENT_EXPECT_TLS_BACKEND"); want != "" && b != want {
		t.Fatalf("TLSBackend() = %q, the build says %q", b, want)
	}
}

func TestCheckRuntime(t *testing.T) {
	if err := CheckRuntime(); err != nil {
		t.Fatalf("CheckRuntime: %v", err)
	}
}

func TestCodeNames(t *testing.T) {
	if InvalidArgument.String() != "invalid argument" || Code(12345).String() != "unknown error code" {
		t.Fatalf("names: %q %q", InvalidArgument, Code(12345))
	}
}

func TestCodeError(t *testing.T) {
	if codeError(0) != nil || codeError(7) != nil {
		t.Fatal("non-negative return values are success")
	}
	var e *Error
	if err := codeError(-8); !errors.As(err, &e) || e.Code != Unavailable || err.Error() != "unavailable" {
		t.Fatalf("codeError(-8) = %v", err)
	}
}

func TestErrorsIsMatchesByCode(t *testing.T) {
	// A real failure from the library, wrapped the way callers wrap errors.
	_, err := ParseSpiffeID("not a spiffe id")
	if err == nil {
		t.Fatal("ParseSpiffeID accepted a bad ID")
	}
	wrapped := fmt.Errorf("loading config: %w", err)
	if !errors.Is(wrapped, &Error{Code: InvalidArgument}) {
		t.Fatalf("errors.Is(%v, InvalidArgument) = false", wrapped)
	}
	if errors.Is(wrapped, &Error{Code: NotFound}) {
		t.Fatalf("errors.Is(%v, NotFound) = true", wrapped)
	}
	// Detail and Message of the target do not matter; other error types never match.
	if !errors.Is(err, &Error{Code: InvalidArgument, Detail: 999, Message: "other"}) {
		t.Fatal("Is compared more than the code")
	}
	if errors.Is(err, errors.New("invalid argument")) || errors.Is(err, (*Error)(nil)) {
		t.Fatal("Is matched something that is not an *Error with that code")
	}
	if !errors.Is(codeError(-8), &Error{Code: Unavailable}) {
		t.Fatal("hot-path errors match by code too")
	}
}
