package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/keyward/keyward"
)

// runBootstrap creates the first tenant, its administrator and an admin key
// directly in the database, so a script goes from nothing to a key in one step.
func runBootstrap(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	// Flag errors and usage go to stderr: stdout carries only the result,
	// which scripts parse (--json).
	fs := newFlagSet("admin bootstrap", stderr)
	db := fs.String("db", DefaultDB, "database: sqlite:PATH or postgres://…")
	tenant := fs.String("tenant", "", "tenant name (created if it does not exist)")
	email := fs.String("email", "", "administrator's email")
	name := fs.String("name", "", "administrator's name (default: the email's local part)")
	pepperFile := fs.String("pepper-file", "", "file holding the server pepper")
	pwStdin := fs.Bool("password-stdin", false, "read the administrator's password from standard input (one line)")
	asJSON := fs.Bool("json", false, "print one JSON line: tenant_id, user_id, key_id, secret")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if err := envDefaults(fs); err != nil {
		return err
	}
	if *tenant == "" || *email == "" {
		return errors.New("admin bootstrap needs --tenant and --email")
	}
	var password *string
	if *pwStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return errors.New("--password-stdin: no password on standard input")
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		password = &line
	}
	driver, addr, err := parseDB(*db)
	if err != nil {
		return err
	}
	pepper, err := loadPepper(*pepperFile, driver, addr)
	if err != nil {
		return err
	}
	hasher, err := keyward.NewHasher(pepper)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, driver, addr)
	if err != nil {
		return err
	}
	defer store.Close()
	svc := keyward.NewService(store, hasher, keyward.Options{})
	res, err := svc.Bootstrap(ctx, keyward.BootstrapInput{Tenant: *tenant, Email: *email, Name: *name, Password: password})
	if err != nil {
		if keyward.ErrorCode(err) != keyward.EInternal {
			return errors.New(keyward.ErrorMessage(err))
		}
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "tenant  %s\nuser    %s\nkey     %s\nsecret  %s\n\nThe secret is shown only this once: store it now.\n",
		res.TenantID, res.UserID, res.KeyID, res.Secret)
	return nil
}
