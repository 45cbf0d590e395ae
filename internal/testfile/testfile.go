// Package testfile holds file helpers that Keyward's tests and benchmarks
// share.
package testfile

import (
	"io"
	"os"
	"testing"
)

// Copy copies the file src to a new file dst (mode 0600), failing tb on
// any error. Benchmarks copy a kept database fixture before they change it.
func Copy(tb testing.TB, src, dst string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}
