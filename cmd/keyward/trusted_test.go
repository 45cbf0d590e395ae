package main

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestServeTrustedProxiesRefused: an entry of --trusted-proxies (or
// KEYWARD_TRUSTED_PROXIES) that is neither an address nor a CIDR stops serve
// with exit 1 and names the entry.
func TestServeTrustedProxiesRefused(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "k.db")
	for _, bad := range []string{"nonsense", "127.0.0.1,10.0.0.0/33", "10.0.0.0/8, example.com", "fe80::1%eth0"} {
		t.Run("flag "+bad, func(t *testing.T) {
			code, _, stderr := runCmd(t, "", "serve", "--addr", "127.0.0.1:0", "--db", db, "--trusted-proxies", bad)
			if code != 1 || !strings.Contains(stderr, "--trusted-proxies") || !strings.Contains(stderr, "neither an IP address nor a CIDR") {
				t.Errorf("exit %d, stderr %q; want 1 and a message naming --trusted-proxies", code, stderr)
			}
		})
	}
	t.Run("environment", func(t *testing.T) {
		t.Setenv("KEYWARD_TRUSTED_PROXIES", "nonsense")
		code, _, stderr := runCmd(t, "", "serve", "--addr", "127.0.0.1:0", "--db", db)
		if code != 1 || !strings.Contains(stderr, `"nonsense"`) {
			t.Errorf("exit %d, stderr %q; want 1 and a message naming the entry", code, stderr)
		}
	})
}

// TestTrustedProxiesParse: CIDRs and single addresses, spaces and empty
// entries allowed.
func TestTrustedProxiesParse(t *testing.T) {
	got, err := parseTrustedProxies(" 127.0.0.1, 10.0.0.0/8,,::1 ,2001:db8::/32,")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("2001:db8::/32")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := parseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v; want nobody", got, err)
	}
}
