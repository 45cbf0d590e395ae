package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

// Version is the build's version: the linker's, else the module's, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// DefaultDB is the embedded default: a SQLite file in ./keyward-data.
const DefaultDB = "sqlite:./keyward-data/keyward.db"

// newFlagSet makes a flag set whose flags default to KEYWARD_<NAME> from the
// environment, so every flag also reads an environment variable.
func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

// envDefaults sets every flag not given on the command line from its
// environment variable, if that is set.
func envDefaults(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := "KEYWARD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}

// parseDB splits a --db value into a driver and its address.
func parseDB(dsn string) (driver, addr string, err error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		return "sqlite", strings.TrimPrefix(dsn, "sqlite://"), nil
	case strings.HasPrefix(dsn, "sqlite:"):
		return "sqlite", strings.TrimPrefix(dsn, "sqlite:"), nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres", dsn, nil
	case dsn != "" && !strings.Contains(dsn, "://"):
		return "sqlite", dsn, nil
	}
	return "", "", fmt.Errorf("--db %q: use sqlite:PATH or postgres://…", dsn)
}

// loadPepper finds the server pepper: KEYWARD_PEPPER, else --pepper-file,
// else (embedded SQLite only) a file in the data folder, generated once with
// mode 0600.
func loadPepper(pepperFile, driver, dbAddr string) ([]byte, error) {
	if v := os.Getenv("KEYWARD_PEPPER"); v != "" {
		return checkPepper([]byte(v), "KEYWARD_PEPPER")
	}
	if pepperFile == "" {
		if driver != "sqlite" {
			return nil, errors.New("a pepper is required: set KEYWARD_PEPPER or --pepper-file (the same on every node)")
		}
		pepperFile = filepath.Join(filepath.Dir(dbAddr), "pepper")
		if _, err := os.Stat(pepperFile); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(pepperFile), 0o700); err != nil {
				return nil, err
			}
			var raw [32]byte
			if _, err := rand.Read(raw[:]); err != nil {
				return nil, err
			}
			f, err := os.OpenFile(pepperFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil && !errors.Is(err, os.ErrExist) {
				return nil, err
			}
			if err == nil {
				_, werr := f.WriteString(hex.EncodeToString(raw[:]) + "\n")
				if cerr := f.Close(); werr == nil {
					werr = cerr
				}
				if werr != nil {
					return nil, werr
				}
			}
		}
	}
	b, err := os.ReadFile(pepperFile)
	if err != nil {
		return nil, fmt.Errorf("read pepper: %w", err)
	}
	return checkPepper([]byte(strings.TrimSpace(string(b))), pepperFile)
}

func checkPepper(p []byte, from string) ([]byte, error) {
	if len(p) < 32 {
		return nil, fmt.Errorf("the pepper from %s must be at least 32 bytes", from)
	}
	return p, nil
}
