package main

import (
	"context"
	"fmt"
	"io"
)

// runMigrate applies the embedded migrations and exits: the first step of a
// rolling upgrade, before new nodes start (old nodes refuse nothing newer
// than they know only at start, so run it when every node is on a build
// that knows the new schema, or stop the old ones first).
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	db := fs.String("db", DefaultDB, "database: sqlite:PATH or postgres://…")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if err := envDefaults(fs); err != nil {
		return err
	}
	driver, addr, err := parseDB(*db)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, driver, addr) // opening applies the migrations
	if err != nil {
		return err
	}
	defer store.Close()
	v, ok := store.(interface {
		SchemaVersion(context.Context) (int64, error)
	})
	if !ok {
		return fmt.Errorf("the %s store does not report its schema version", driver)
	}
	n, err := v.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema version %d\n", n)
	return nil
}
