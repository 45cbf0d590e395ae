// Command keyward runs the Keyward API key service and its administration
// commands:
//
//	keyward serve [--addr 127.0.0.1:8080] [--db sqlite:./keyward-data/keyward.db]
//	keyward admin bootstrap --db DSN --tenant NAME --email EMAIL [--password-stdin] [--json]
//	keyward version
//
// Every flag also reads an environment variable: --addr reads KEYWARD_ADDR,
// --db KEYWARD_DB, --pepper-file KEYWARD_PEPPER_FILE, and so on.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usageText = `usage:
  keyward serve [--addr 127.0.0.1:8080] [--db sqlite:./keyward-data/keyward.db]
  keyward admin bootstrap --db DSN --tenant NAME --email EMAIL [--password-stdin] [--json]
  keyward migrate --db DSN            (apply the schema migrations and exit)
  keyward keys list|get|create|update|revoke|deactivate|reactivate|rotate|delete|verify|usage [flags]
  keyward users list|get|create|update|delete [flags]
  keyward version

The keys and users commands use the server at --url (KEYWARD_URL, default
http://127.0.0.1:8080) with the API key in KEYWARD_API_KEY, or in the file
named by --api-key-file (KEYWARD_API_KEY_FILE). --json prints JSON for scripts.
Exit codes: 0 done, 1 refused or failed (the reason on stderr), 2 usage.
`

// run is the whole command line, with its streams, so that tests can drive it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stderr)
	case "migrate":
		err = runMigrate(ctx, args[1:], stdout, stderr)
	case "admin":
		if len(args) < 2 || args[1] != "bootstrap" {
			fmt.Fprint(stderr, usageText)
			return 2
		}
		err = runBootstrap(ctx, args[2:], stdin, stdout, stderr)
	case "keys", "users":
		err = runAPI(ctx, args[0], args[1:], stdin, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "keyward", Version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
		return 0
	default:
		fmt.Fprintf(stderr, "keyward: unknown command %q\n%s", args[0], usageText)
		return 2
	}
	if errors.Is(err, errUsage) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "keyward:", err)
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")
