package testfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopy(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.WriteFile(src, []byte("keyward fixture"), 0o600); err != nil {
		t.Fatal(err)
	}
	Copy(t, src, dst)
	got, err := os.ReadFile(dst)
	if err != nil || string(got) != "keyward fixture" {
		t.Fatalf("copy holds %q (%v)", got, err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy's mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}
