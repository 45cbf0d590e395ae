package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/keyward/keyward/postgres/pgtest"
)

// TestMigrate: `keyward migrate` brings an empty database to the build's
// schema and exits; a second run changes nothing; a bad DSN is an error.
func TestMigrate(t *testing.T) {
	for name, db := range map[string]func(*testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "k.db") },
		"postgres": func(t *testing.T) string { return pgtest.NewDatabase(t) },
	} {
		t.Run(name, func(t *testing.T) {
			dsn := db(t)
			code, out, errOut := runCmd(t, "", "migrate", "--db", dsn)
			if code != 0 || !regexp.MustCompile(`^schema version [1-9][0-9]*\n$`).MatchString(out) {
				t.Fatalf("migrate: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			code, again, errOut := runCmd(t, "", "migrate", "--db", dsn)
			if code != 0 || again != out {
				t.Fatalf("second migrate: exit %d, stdout %q (first %q), stderr %q", code, again, out, errOut)
			}
		})
	}
	if code, _, errOut := runCmd(t, "", "migrate", "--db", "mysql://nope"); code != 1 || errOut == "" {
		t.Fatalf("bad DSN: exit %d, stderr %q", code, errOut)
	}
}
