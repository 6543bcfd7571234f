package ambient

import (
	"strings"
	"testing"
)

func TestParseSocketAddress(t *testing.T) {
	for _, c := range []struct {
		in   string
		want SocketAddress
	}{
		{"198.18.0.1:80", SocketAddress{"198.18.0.1:80", "198.18.0.1", 80, 4, false}},
		{"127.0.0.1:0", SocketAddress{"127.0.0.1:0", "127.0.0.1", 0, 4, false}},
		{"[2001:DB8:0::1]:65535", SocketAddress{"[2001:db8::1]:65535", "2001:db8::1", 65535, 6, false}},
		{"[::ffff:198.18.0.1]:15008",
			SocketAddress{"[::ffff:198.18.0.1]:15008", "::ffff:198.18.0.1", 15008, 6, true}},
	} {
		got, err := ParseSocketAddress(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSocketAddress(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, says string }{
		{"198.18.0.1:65536", `invalid port in "198.18.0.1:65536": want 0-65535`},
		{"198.18.0.1", "want IPv4:PORT or [IPv6]:PORT"},
		{"", "want IPv4:PORT or [IPv6]:PORT"},
		{"[198.18.0.1]:80", "brackets need IPv6"},
		{"[fe80::1%eth0]:80", `invalid IP address "fe80::1%eth0"`},
		{"localhost:80", `invalid IP address "localhost"`},
		{"198.18\x00.0.1:80", `invalid IP address "198.18\x00.0.1"`},
		{"198.18.0.1:80\x00", "want 0-65535"},
	} {
		_, err := ParseSocketAddress(c.in)
		errCode(t, err, InvalidArgument, 0)
		if !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParseSocketAddress(%q): %q does not say %q", c.in, err, c.says)
		}
	}
	a, err := ParseIP("2001:db8::7", 443)
	if err != nil || a.Text != "[2001:db8::7]:443" || a.IPVersion != 6 {
		t.Errorf("ParseIP = %+v, %v", a, err)
	}
	_, err = ParseIP("[::1]", 80)
	errCode(t, err, InvalidArgument, 0)
	if err := CheckAuthority("echo.default.svc.cluster.local:8080"); err != nil {
		t.Errorf("CheckAuthority of a host name: %v", err)
	}
	err = CheckAuthority("198.18.0.1:0")
	errCode(t, err, InvalidArgument, 0)
	if !strings.Contains(err.Error(), "bad port (want 1-65535)") {
		t.Errorf("CheckAuthority port 0: %q", err)
	}
}
