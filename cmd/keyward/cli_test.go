package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	kwclient "github.com/keyward/keyward/client"
)

// The keys and users commands, end to end: the command line in-process
// against a real Main over 127.0.0.1.

// cliEnv is a server, a tenant, and the environment the commands read.
type cliEnv struct {
	srv *server
	tn  *tenant
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	srv := startServer(t, t.TempDir(), &recorder{}, serverOpts{})
	tn := srv.newTenant(t, "Acme")
	srv.c.settings(t, tn.AdminKey, map[string]any{"max_keys_per_user": 100, "max_keys_per_service_user": 100})
	t.Setenv("KEYWARD_URL", srv.m.URL)
	t.Setenv("KEYWARD_API_KEY", tn.AdminKey)
	t.Setenv("KEYWARD_API_KEY_FILE", "")
	os.Unsetenv("KEYWARD_API_KEY_FILE")
	return &cliEnv{srv: srv, tn: tn}
}

// cliRun is one run of the command line.
type cliRun struct {
	args           []string
	code           int
	stdout, stderr string
}

func (e *cliEnv) run(t *testing.T, stdin string, args ...string) cliRun {
	t.Helper()
	code, stdout, stderr := runCmd(t, stdin, args...)
	return cliRun{args: args, code: code, stdout: stdout, stderr: stderr}
}

// ok runs a command that must succeed.
func (e *cliEnv) ok(t *testing.T, stdin string, args ...string) cliRun {
	t.Helper()
	r := e.run(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("keyward %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// fails runs a command that must exit with code and say want on stderr.
func (e *cliEnv) fails(t *testing.T, code int, want, stdin string, args ...string) cliRun {
	t.Helper()
	r := e.run(t, stdin, args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		t.Fatalf("keyward %s: exit %d (want %d), stderr %q (want %q)", strings.Join(args, " "), r.code, code, r.stderr, want)
	}
	return r
}

func decodeJSON[T any](t *testing.T, r cliRun) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("keyward %s --json printed %q: %v", strings.Join(r.args, " "), r.stdout, err)
	}
	return v
}

// tableRows splits a table into its rows of cells (two or more spaces apart).
func tableRows(out string) [][]string {
	var rows [][]string
	sep := regexp.MustCompile(`\s{2,}`)
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			break
		}
		rows = append(rows, sep.Split(strings.TrimSpace(line), -1))
	}
	return rows
}

// field reads "Name  value" from a vertical view.
func field(t *testing.T, out, name string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("no %q in:\n%s", name, out)
	return ""
}

type cliKeyList struct {
	Keys          []kwclient.Key `json:"keys"`
	NextPageToken *string        `json:"next_page_token"`
	Total         int            `json:"total"`
}

func TestCLIKeys(t *testing.T) {
	e := newCLIEnv(t)
	sys := e.srv.c.createUser(t, e.tn.AdminKey, map[string]any{"email": "robot@acme.example", "name": "Robot", "kind": "system", "roles": []string{}})

	// create --json: the key and its secret, for scripts.
	r := e.ok(t, "", "keys", "create", "--name", "billing sync", "--owner", sys.ID, "--role", "admin", "--scopes", "invoices:read, invoices:write",
		"--meta", `{"team":"billing"}`, "--description", "nightly", "--expires", "30d", "--json")
	created := decodeJSON[kwclient.CreatedKey](t, r)
	if created.Secret == "" || !strings.HasPrefix(created.Secret, created.Start) || created.Name != "billing sync" || created.OwnerID != sys.ID ||
		created.Role != "admin" || !slices.Equal(created.Scopes, []string{"invoices:read", "invoices:write"}) || created.Meta["team"] != "billing" ||
		created.Description != "nightly" || created.ExpiresAt == nil || created.ExpiresAt.Sub(time.Now()) < 29*24*time.Hour {
		t.Fatalf("keys create --json: %+v", created.Key)
	}
	if !strings.Contains(r.stderr, "only this once") {
		t.Errorf("no warning on stderr with --json: %q", r.stderr)
	}
	e.srv.c.wantVerify(t, created.Secret, "VALID", created.ID)

	// create for people: a view of the key, the secret once, the warning on stderr.
	r = e.ok(t, "", "keys", "create", "--name", "laptop")
	secret := field(t, r.stdout, "Secret")
	if strings.Count(r.stdout, secret) != 1 || !strings.HasPrefix(secret, "kw_") {
		t.Errorf("keys create printed the secret %d times:\n%s", strings.Count(r.stdout, secret), r.stdout)
	}
	if !strings.Contains(r.stderr, "shown only this once") {
		t.Errorf("keys create: no warning on stderr: %q", r.stderr)
	}
	laptopID := field(t, r.stdout, "ID")
	if field(t, r.stdout, "Role") != "readonly" || field(t, r.stdout, "Expires") != "Never" || field(t, r.stdout, "Last used") != "Never" ||
		field(t, r.stdout, "Owner") != "admin <"+e.tn.AdminEmail+"> "+e.tn.AdminID {
		t.Errorf("keys create view:\n%s", r.stdout)
	}

	// list: a table for people.
	r = e.ok(t, "", "keys", "list")
	rows := tableRows(r.stdout)
	if want := []string{"NAME", "ID", "OWNER", "TYPE", "ROLE", "STATUS", "CREATED", "EXPIRES", "LAST USED"}; !slices.Equal(rows[0], want) {
		t.Fatalf("keys list header %q, want %q", rows[0], want)
	}
	if len(rows) != 4 { // header, 2 keys, the bootstrap key
		t.Fatalf("keys list: %d rows:\n%s", len(rows), r.stdout)
	}
	byID := map[string][]string{}
	for _, row := range rows[1:] {
		if len(row) != 9 {
			t.Fatalf("row %q has %d cells", row, len(row))
		}
		byID[row[1]] = row
	}
	row := byID[created.ID]
	if row == nil || row[0] != "billing sync" || row[2] != "Robot" || row[3] != "system" || row[4] != "admin" || row[5] != "active" ||
		!strings.HasPrefix(row[6], time.Now().UTC().Format("2006-01-02")) || row[7] == "Never" {
		t.Errorf("row of the system key: %q", row)
	}
	if row := byID[laptopID]; row == nil || row[7] != "Never" || row[8] != "Never" {
		t.Errorf("row of the laptop key: %q", row)
	}
	for _, s := range []string{created.Secret, secret, e.tn.AdminKey} {
		if strings.Contains(r.stdout, s) {
			t.Error("keys list printed a secret")
		}
	}

	// list --json: the API's shape, filters and paging.
	l := decodeJSON[cliKeyList](t, e.ok(t, "", "keys", "list", "--json"))
	if l.Total != 3 || len(l.Keys) != 3 || l.NextPageToken != nil {
		t.Errorf("keys list --json: total %d, %d keys, token %v", l.Total, len(l.Keys), l.NextPageToken)
	}
	l = decodeJSON[cliKeyList](t, e.ok(t, "", "keys", "list", "--type", "system", "--json"))
	if l.Total != 1 || l.Keys[0].ID != created.ID {
		t.Errorf("keys list --type system: %+v", l)
	}
	l = decodeJSON[cliKeyList](t, e.ok(t, "", "keys", "list", "--q", "LAPTOP", "--status", "active", "--owner", e.tn.AdminID, "--json"))
	if l.Total != 1 || l.Keys[0].ID != laptopID {
		t.Errorf("keys list --q LAPTOP: %+v", l)
	}
	l = decodeJSON[cliKeyList](t, e.ok(t, "", "keys", "list", "--sort", "name", "--page-size", "1", "--json"))
	if l.Total != 3 || len(l.Keys) != 1 || l.NextPageToken == nil || l.Keys[0].Name != "admin" && l.Keys[0].Name != "billing sync" {
		t.Errorf("keys list --page-size 1: %+v", l)
	}
	// Flags after the positional or before, all the same.
	r = e.ok(t, "", "keys", "list", "--page-size", "2", "--sort", "name")
	if !strings.Contains(r.stdout, "2 of 3 keys. Next page: --page-token ") {
		t.Errorf("keys list with a next page: no footer:\n%s", r.stdout)
	}
	tok := regexp.MustCompile(`--page-token (\S+)`).FindStringSubmatch(r.stdout)[1]
	r = e.ok(t, "", "keys", "list", "--page-size", "2", "--sort", "name", "--page-token", tok)
	if rows := tableRows(r.stdout); len(rows) != 2 || rows[1][0] != "laptop" {
		t.Errorf("second page: %q", rows)
	}
	l = decodeJSON[cliKeyList](t, e.ok(t, "", "keys", "list", "--all", "--page-size", "1", "--json"))
	if l.Total != 3 || len(l.Keys) != 3 || l.NextPageToken != nil {
		t.Errorf("keys list --all: total %d, %d keys", l.Total, len(l.Keys))
	}

	// get: a view and JSON, never the secret.
	r = e.ok(t, "", "keys", "get", created.ID)
	if field(t, r.stdout, "Name") != "billing sync" || field(t, r.stdout, "Scopes") != "invoices:read, invoices:write" ||
		field(t, r.stdout, "Meta") != `{"team":"billing"}` || field(t, r.stdout, "Type") != "system" || strings.Contains(r.stdout, created.Secret) {
		t.Errorf("keys get:\n%s", r.stdout)
	}
	got := decodeJSON[kwclient.Key](t, e.ok(t, "", "keys", "get", "--json", created.ID))
	if got.ID != created.ID || got.Start != created.Start {
		t.Errorf("keys get --json: %+v", got)
	}
	// Last used shows once the key was used. (Used only now: a use before
	// the lists above could reach the database while they run, and they
	// check "Never".)
	e.srv.c.wantVerify(t, secret, "VALID", laptopID)
	e.srv.c.waitLastUsed(t, e.tn.AdminKey, laptopID)
	r = e.ok(t, "", "keys", "get", laptopID)
	if lu := field(t, r.stdout, "Last used"); lu == "Never" || !strings.HasPrefix(lu, time.Now().UTC().Format("2006-01-02")) {
		t.Errorf("Last used after a verification: %q", lu)
	}

	// update.
	r = e.ok(t, "", "keys", "update", laptopID, "--name", "old laptop", "--description", "")
	if field(t, r.stdout, "Name") != "old laptop" {
		t.Errorf("keys update:\n%s", r.stdout)
	}
	e.fails(t, 2, "nothing to change", "", "keys", "update", laptopID)

	// deactivate, reactivate, revoke.
	r = e.ok(t, "", "keys", "deactivate", laptopID)
	if !strings.Contains(r.stdout, "is now inactive") {
		t.Errorf("keys deactivate: %q", r.stdout)
	}
	e.srv.c.wantVerify(t, secret, "INACTIVE", laptopID)
	e.fails(t, 1, "(conflict, 409)", "", "keys", "deactivate", laptopID)
	k := decodeJSON[kwclient.Key](t, e.ok(t, "", "keys", "reactivate", laptopID, "--json"))
	if k.Status != "active" {
		t.Errorf("keys reactivate --json: %+v", k)
	}
	r = e.ok(t, "", "keys", "revoke", laptopID, "--reason", "lost it")
	if !strings.Contains(r.stdout, "Revoked key "+laptopID) {
		t.Errorf("keys revoke: %q", r.stdout)
	}
	r = e.ok(t, "", "keys", "get", laptopID)
	if field(t, r.stdout, "Status") != "revoked" || field(t, r.stdout, "Reason") != "lost it" {
		t.Errorf("revoked key:\n%s", r.stdout)
	}
	r = e.fails(t, 1, "Unable to Revoke API Key", "", "keys", "revoke", laptopID)
	if !strings.Contains(r.stderr, "(not_revocable, 409)") || r.stdout != "" {
		t.Errorf("revoking twice: stdout %q, stderr %q", r.stdout, r.stderr)
	}

	// rotate: a new secret, once.
	r = e.ok(t, "", "keys", "rotate", created.ID, "--grace", "0s")
	newSecret := field(t, r.stdout, "Secret")
	newID := field(t, r.stdout, "ID")
	if newID == created.ID || newSecret == created.Secret || !strings.Contains(r.stderr, "only this once") || !strings.Contains(r.stdout, "has expired") {
		t.Errorf("keys rotate:\n%s\n%s", r.stdout, r.stderr)
	}
	e.srv.c.wantVerify(t, newSecret, "VALID", newID)
	e.srv.c.wantVerify(t, created.Secret, "EXPIRED", created.ID)
	rot := decodeJSON[kwclient.CreatedKey](t, e.ok(t, "", "keys", "rotate", newID, "--json"))
	if rot.Secret == "" || rot.ID == newID {
		t.Errorf("keys rotate --json: %+v", rot)
	}
	e.srv.c.wantVerify(t, newSecret, "VALID", newID) // the default grace keeps it working

	// revoke several at once: each failure on stderr, exit 1.
	a := decodeJSON[kwclient.CreatedKey](t, e.ok(t, "", "keys", "create", "--name", "a", "--json"))
	b := decodeJSON[kwclient.CreatedKey](t, e.ok(t, "", "keys", "create", "--name", "b", "--json"))
	r = e.fails(t, 1, "1 of 3 keys were not revoked", "", "keys", "revoke", a.ID, b.ID, "key_nosuchkey", "--reason", "cleanup")
	if !strings.Contains(r.stdout, "Revoked 2 of 3 keys.") || !strings.Contains(r.stderr, "key_nosuchkey: ") {
		t.Errorf("bulk revoke: stdout %q stderr %q", r.stdout, r.stderr)
	}
	e.srv.c.wantVerify(t, b.Secret, "REVOKED", b.ID)
	c := decodeJSON[kwclient.CreatedKey](t, e.ok(t, "", "keys", "create", "--name", "c", "--json"))
	d := decodeJSON[kwclient.CreatedKey](t, e.ok(t, "", "keys", "create", "--name", "d", "--json"))
	res := decodeJSON[kwclient.BulkRevokeResult](t, e.ok(t, "", "keys", "revoke", c.ID, d.ID, "--json"))
	if res.Revoked != 2 || res.Failed == nil || len(res.Failed) != 0 {
		t.Errorf("bulk revoke --json: %+v", res)
	}

	// delete.
	r = e.ok(t, "", "keys", "delete", a.ID)
	if !strings.Contains(r.stdout, "Deleted key "+a.ID) {
		t.Errorf("keys delete: %q", r.stdout)
	}
	e.fails(t, 1, "(not_found, 404)", "", "keys", "get", a.ID)
	del := decodeJSON[map[string]any](t, e.ok(t, "", "keys", "delete", b.ID, "--json"))
	if del["id"] != b.ID || del["deleted"] != true {
		t.Errorf("keys delete --json: %v", del)
	}
	e.fails(t, 1, "(not_found, 404)", "", "keys", "delete", b.ID)
}

func TestCLIKeysVerify(t *testing.T) {
	e := newCLIEnv(t)
	ro := e.srv.c.createKey(t, e.tn.AdminKey, map[string]any{"name": "reader", "scopes": []string{"a", "b"}})

	// Valid: exit 0, a table, no credential needed.
	t.Setenv("KEYWARD_API_KEY", "")
	r := e.ok(t, ro.Secret+"\n", "keys", "verify")
	rows := tableRows(r.stdout)
	if len(rows) != 2 || rows[1][0] != "VALID" || rows[1][1] != ro.ID || rows[1][5] != "readonly" || rows[1][6] != "a,b" || rows[1][7] != "Never" {
		t.Errorf("keys verify: %q", rows)
	}
	if strings.Contains(r.stdout+r.stderr, ro.Secret) {
		t.Error("keys verify printed the secret")
	}
	v := decodeJSON[kwclient.VerifyResult](t, e.ok(t, ro.Secret, "keys", "verify", "--json", "--require-scopes", "a"))
	if !v.Valid || v.Key == nil || v.Key.ID != ro.ID {
		t.Errorf("keys verify --json: %+v", v)
	}
	// Requirements not met, or a bad key: exit 1, the code on stdout and stderr.
	r = e.fails(t, 1, "not valid: FORBIDDEN", ro.Secret, "keys", "verify", "--require-role", "admin")
	if rows := tableRows(r.stdout); len(rows) != 2 || rows[1][0] != "FORBIDDEN" {
		t.Errorf("keys verify --require-role admin: %q", r.stdout)
	}
	r = e.fails(t, 1, "not valid: NOT_FOUND", "kw_bogus\n", "keys", "verify", "--json")
	if v := decodeJSON[kwclient.VerifyResult](t, r); v.Valid || v.Code != "NOT_FOUND" || v.Key != nil {
		t.Errorf("keys verify of a bogus key: %+v", v)
	}
	// --key-file.
	f := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(f, []byte(ro.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok(t, "", "keys", "verify", "--key-file", f, "--require-scopes", "a,b")
	e.fails(t, 1, "not valid: FORBIDDEN", "", "keys", "verify", "--key-file", f, "--require-scopes", "a,c")
	// No key at all: usage.
	e.fails(t, 2, "no key on standard input", "", "keys", "verify")
	e.fails(t, 2, "empty", "  \n", "keys", "verify")
}

func TestCLIUsers(t *testing.T) {
	e := newCLIEnv(t)
	r := e.ok(t, "a long password here\n", "users", "create", "--email", "bob@acme.example", "--name", "Bob", "--roles", "developer",
		"--password-stdin")
	bobID := field(t, r.stdout, "ID")
	if field(t, r.stdout, "Roles") != "developer" || field(t, r.stdout, "Kind") != "user" || field(t, r.stdout, "Licensed") != "yes" {
		t.Errorf("users create:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, "a long password here") {
		t.Error("users create printed the password")
	}
	e.srv.c.login(t, "bob@acme.example", "a long password here")
	sys := decodeJSON[kwclient.User](t, e.ok(t, "", "users", "create", "--email", "robot@acme.example", "--name", "Robot", "--kind", "system",
		"--licensed=false", "--json"))
	if sys.Kind != "system" || sys.Licensed || len(sys.Roles) != 0 || !strings.HasPrefix(sys.ID, "usr_") {
		t.Errorf("users create --json: %+v", sys)
	}
	e.fails(t, 1, "(conflict, 409)", "", "users", "create", "--email", "bob@acme.example", "--name", "Bob 2")
	e.fails(t, 2, "--email and --name are required", "", "users", "create", "--name", "Nobody")

	r = e.ok(t, "", "users", "list")
	rows := tableRows(r.stdout)
	if want := []string{"NAME", "ID", "EMAIL", "KIND", "ROLES", "LICENSED", "CREATED"}; !slices.Equal(rows[0], want) || len(rows) != 4 {
		t.Fatalf("users list:\n%s", r.stdout)
	}
	for _, row := range rows[1:] {
		if row[1] == sys.ID && (row[0] != "Robot" || row[3] != "system" || row[4] != "-" || row[5] != "no") {
			t.Errorf("row of the system user: %q", row)
		}
	}
	ul := decodeJSON[struct {
		Users         []kwclient.User `json:"users"`
		NextPageToken *string         `json:"next_page_token"`
		Total         int             `json:"total"`
	}](t, e.ok(t, "", "users", "list", "--kind", "system", "--json"))
	if ul.Total != 1 || ul.Users[0].ID != sys.ID || ul.NextPageToken != nil {
		t.Errorf("users list --kind system --json: %+v", ul)
	}
	ul.Total = 0
	r = e.ok(t, "", "users", "list", "--page-size", "1", "--q", "acme.example")
	if !strings.Contains(r.stdout, "1 of 3 users. Next page: --page-token") {
		t.Errorf("users list --page-size 1:\n%s", r.stdout)
	}
	r = e.ok(t, "", "users", "list", "--all", "--page-size", "1", "--json")
	if n := strings.Count(r.stdout, `"email"`); n != 3 {
		t.Errorf("users list --all: %d users", n)
	}

	u := decodeJSON[kwclient.User](t, e.ok(t, "", "users", "get", bobID, "--json"))
	if u.Email != "bob@acme.example" {
		t.Errorf("users get --json: %+v", u)
	}
	r = e.ok(t, "", "users", "update", bobID, "--name", "Robert", "--roles", "", "--licensed=false")
	if field(t, r.stdout, "Name") != "Robert" || field(t, r.stdout, "Roles") != "-" || field(t, r.stdout, "Licensed") != "no" {
		t.Errorf("users update:\n%s", r.stdout)
	}
	e.ok(t, "another long password\n", "users", "update", bobID, "--password-stdin")
	e.srv.c.login(t, "bob@acme.example", "another long password")
	e.fails(t, 2, "nothing to change", "", "users", "update", bobID)
	e.fails(t, 1, "(invalid_argument, 400)", "", "users", "update", bobID, "--roles", "wizard")

	r = e.ok(t, "", "users", "delete", bobID)
	if !strings.Contains(r.stdout, "Deleted user "+bobID) {
		t.Errorf("users delete: %q", r.stdout)
	}
	e.fails(t, 1, "(not_found, 404)", "", "users", "get", bobID)
	del := decodeJSON[map[string]any](t, e.ok(t, "", "users", "delete", sys.ID, "--json"))
	if del["deleted"] != true {
		t.Errorf("users delete --json: %v", del)
	}
}

// TestCLIUsageAndConnection: exit code 2 for usage, 1 for refusals and
// operational errors; where the URL and the key come from.
func TestCLIUsageAndConnection(t *testing.T) {
	e := newCLIEnv(t)
	for _, args := range [][]string{
		{"keys"}, {"users"}, {"keys", "frobnicate"}, {"users", "promote"},
		{"keys", "get"}, {"keys", "get", "a", "b"}, {"keys", "list", "--bogus"}, {"keys", "list", "extra"},
		{"keys", "create"}, {"keys", "create", "--name", "x", "--meta", "[1]"}, {"keys", "create", "--name", "x", "--expires", "soon"},
		{"keys", "create", "--name", "x", "--rate-limit", "lots"}, {"keys", "rotate", "key_x", "--grace", "-1s"},
		{"users", "delete"}, {"keys", "list", "--page-size", "many"},
	} {
		r := e.run(t, "", args...)
		if r.code != 2 || r.stderr == "" || r.stdout != "" {
			t.Errorf("keyward %s: exit %d, stdout %q, stderr %q; want 2 and usage on stderr", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	for _, args := range [][]string{{"keys", "-h"}, {"keys", "list", "-h"}, {"users", "help"}} {
		if r := e.run(t, "", args...); r.code != 0 || !strings.Contains(r.stderr, "usage: keyward") {
			t.Errorf("keyward %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if r := e.run(t, "", "help"); r.code != 0 || !strings.Contains(r.stdout, "keyward keys list|get|create") {
		t.Errorf("keyward help does not list the keys command: %q", r.stdout)
	}

	// A refusal of the API: exit 1 with the problem's detail.
	e.fails(t, 1, "(invalid_argument, 400)", "", "keys", "list", "--sort", "secret")
	// A readonly key may list, not create.
	ro := e.srv.c.createKey(t, e.tn.AdminKey, map[string]any{"name": "reader"})
	t.Setenv("KEYWARD_API_KEY", ro.Secret)
	e.ok(t, "", "keys", "list")
	e.fails(t, 1, "(permission_denied, 403)", "", "keys", "create", "--name", "nope")

	// No key: usage, before any request.
	t.Setenv("KEYWARD_API_KEY", "")
	e.fails(t, 2, "no API key", "", "keys", "list")
	// A key that does not work: 401, exit 1.
	t.Setenv("KEYWARD_API_KEY", "kw_nonsense")
	e.fails(t, 1, "(unauthenticated, 401)", "", "keys", "list")

	// --api-key-file wins over KEYWARD_API_KEY.
	f := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(f, []byte(e.tn.AdminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok(t, "", "keys", "create", "--name", "from file", "--api-key-file", f)
	t.Setenv("KEYWARD_API_KEY_FILE", f)
	e.ok(t, "", "keys", "list")
	e.fails(t, 1, "--api-key-file", "", "keys", "list", "--api-key-file", filepath.Join(t.TempDir(), "missing"))
	os.Unsetenv("KEYWARD_API_KEY_FILE")

	// --url wins over KEYWARD_URL; nothing listening is exit 1.
	t.Setenv("KEYWARD_API_KEY", e.tn.AdminKey)
	t.Setenv("KEYWARD_URL", "http://127.0.0.1:1")
	e.fails(t, 1, "127.0.0.1:1", "", "keys", "list")
	e.ok(t, "", "keys", "list", "--url", e.srv.m.URL)

	// Other flags do not read the environment.
	t.Setenv("KEYWARD_URL", e.srv.m.URL)
	t.Setenv("KEYWARD_NAME", "from the environment")
	e.fails(t, 2, "--name is required", "", "keys", "create")
}

// TestCLIOutputIsClean: names with control characters cannot break the
// table or reach the terminal as escape sequences.
func TestCLIOutputIsClean(t *testing.T) {
	e := newCLIEnv(t)
	// The server refuses C0 controls but a tab, and lets C1 controls
	// through: U+009B is CSI, an escape sequence's start on some terminals.
	nasty := "evil\u009b2J\ttab"
	e.srv.c.createKey(t, e.tn.AdminKey, map[string]any{"name": nasty})
	for _, args := range [][]string{{"keys", "list"}, {"keys", "list", "--q", "evil"}} {
		r := e.ok(t, "", args...)
		if strings.ContainsAny(r.stdout, "\u009b\t") {
			t.Errorf("keyward %s printed control characters: %q", strings.Join(args, " "), r.stdout)
		}
	}
	r := e.ok(t, "", "keys", "list", "--q", "evil")
	if rows := tableRows(r.stdout); len(rows) != 2 || len(rows[1]) != 9 {
		t.Errorf("a nasty name broke the table: %q", rows)
	}
	// --json keeps the name as it is, escaped by JSON.
	l := decodeJSON[cliKeyList](t, e.ok(t, "", "keys", "list", "--q", "evil", "--json"))
	if len(l.Keys) != 1 || l.Keys[0].Name != nasty {
		t.Errorf("--json names %+v", l.Keys)
	}
}

// TestCLIClientUsage covers client.Usage through `keys usage` and per-key
// rate limits through `keys create/update --rate-limit`, against Main.
func TestCLIClientUsage(t *testing.T) {
	e := newCLIEnv(t)
	k := decodeJSON[kwclient.CreatedKey](t, e.ok(t, "", "keys", "create", "--name", "counted", "--rate-limit", "3/1h", "--json"))
	if k.RateLimit == nil || *k.RateLimit != (kwclient.RateLimit{Limit: 3, WindowSeconds: 3600}) {
		t.Fatalf("keys create --rate-limit 3/1h: %+v", k.RateLimit)
	}
	if r := e.ok(t, "", "keys", "get", k.ID); field(t, r.stdout, "Rate limit") != "3 per 1h0m0s" {
		t.Errorf("keys get shows the rate limit as %q", field(t, r.stdout, "Rate limit"))
	}
	for _, want := range []string{"VALID", "VALID", "VALID", "RATE_LIMITED"} {
		e.srv.c.wantVerify(t, k.Secret, want, k.ID)
	}
	r := e.ok(t, "", "keys", "update", k.ID, "--rate-limit", "none", "--json")
	if up := decodeJSON[kwclient.Key](t, r); up.RateLimit != nil {
		t.Errorf("keys update --rate-limit none: %+v", up.RateLimit)
	}
	e.srv.c.wantVerify(t, k.Secret, "VALID", k.ID)

	// The counts reach the store within the usage interval.
	var u kwclient.Usage
	deadline := time.Now().Add(10 * time.Second)
	for {
		u = decodeJSON[kwclient.Usage](t, e.ok(t, "", "keys", "usage", k.ID, "--json"))
		var total int64
		for _, b := range u.Buckets {
			total += b.Total
		}
		if total >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if u.KeyID != k.ID || len(u.Buckets) < 1 || u.To.Sub(u.From) != 24*time.Hour {
		t.Fatalf("keys usage --json: %+v", u)
	}
	var valid, limited int64
	for _, b := range u.Buckets {
		valid += b.Counts["VALID"]
		limited += b.Counts["RATE_LIMITED"]
	}
	if valid != 4 || limited != 1 {
		t.Errorf("usage counts: VALID %d, RATE_LIMITED %d; want 4 and 1: %+v", valid, limited, u)
	}
	r = e.ok(t, "", "keys", "usage", k.ID)
	rows := tableRows(r.stdout)
	if len(rows) < 2 || !slices.Equal(rows[0], []string{"HOUR", "TOTAL", "RATE_LIMITED", "VALID"}) {
		t.Errorf("keys usage table:\n%s", r.stdout)
	}
	from := time.Now().UTC().Add(-48 * time.Hour).Format(time.RFC3339)
	to := time.Now().UTC().Add(-47 * time.Hour).Format(time.RFC3339)
	r = e.ok(t, "", "keys", "usage", k.ID, "--from", from, "--to", to)
	if !strings.HasPrefix(r.stdout, "No verifications of "+k.ID) {
		t.Errorf("keys usage of an idle range: %q", r.stdout)
	}
	e.fails(t, 1, "(invalid_argument, 400)", "", "keys", "usage", k.ID, "--from", to, "--to", from)
	e.fails(t, 2, "--from must be an RFC 3339 time", "", "keys", "usage", k.ID, "--from", "yesterday")
}
