package ambient

import (
	"errors"
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
