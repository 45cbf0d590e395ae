package main

// `keyward admin bootstrap` and `keyward version`, through run().

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const bootPassword = "bootstrap password 1"

func bootstrapArgs(db, tenantName, email string, extra ...string) []string {
	return append([]string{"admin", "bootstrap", "--db", db, "--tenant", tenantName, "--email", email}, extra...)
}

func TestBootstrapJSON(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "k.db")
	code, stdout, stderr := runCmd(t, bootPassword+"\n", bootstrapArgs(db, "acme", "ada@acme.example", "--password-stdin", "--json")...)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr %q, want nothing", stderr)
	}
	// Exactly one line of exactly these four fields.
	if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("stdout %q, want exactly one line", stdout)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(stdout), &fields); err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	var names []string
	for name, v := range fields {
		names = append(names, name)
		if s, ok := v.(string); !ok || s == "" {
			t.Errorf("field %s = %v, want a non-empty string", name, v)
		}
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"key_id", "secret", "tenant_id", "user_id"}, names); diff != "" {
		t.Fatalf("fields (-want +got):\n%s", diff)
	}
	var b bootstrapOut
	json.Unmarshal([]byte(stdout), &b)
	for prefix, v := range map[string]string{"ten_": b.TenantID, "usr_": b.UserID, "key_": b.KeyID, "kw_": b.Secret} {
		if !strings.HasPrefix(v, prefix) {
			t.Errorf("%q does not start with %s", v, prefix)
		}
	}

	rec := &recorder{}
	rec.issue("secret", b.Secret, "admin bootstrap")
	srv := startServer(t, dir, rec, serverOpts{})
	c := srv.c
	var me meAnswer
	c.must(t, 200, "GET", "/v1/me", b.Secret, nil, &me)
	if me.User.ID != b.UserID || me.User.Email != "ada@acme.example" || me.User.Name != "ada" || me.User.Kind != "user" ||
		!me.User.Licensed || me.Tenant.ID != b.TenantID || me.Tenant.Name != "acme" {
		t.Errorf("GET /v1/me: %+v", me)
	}
	if got := sorted(me.User.Roles...); !slices.Equal(got, []string{"developer", "tenant_admin"}) {
		t.Errorf("roles %v, want tenant_admin and developer", me.User.Roles)
	}
	if me.Key == nil || me.Key.ID != b.KeyID || me.Key.Role != "admin" || me.Key.ExpiresAt != nil || me.Key.Status != "active" ||
		me.Key.OwnerID != b.UserID || me.Key.Type != "user" || !strings.HasPrefix(b.Secret, me.Key.Start) {
		t.Errorf("the bootstrap key: %+v", me.Key)
	}
	if k := c.getKey(t, b.Secret, b.KeyID); k.Role != "admin" || k.ExpiresAt != nil {
		t.Errorf("GET the bootstrap key: role %s, expires %v", k.Role, k.ExpiresAt)
	}
	if set := c.settings(t, b.Secret, nil); !set.APIKeysEnabled {
		t.Error("the bootstrapped tenant has API keys switched off")
	}
	v := c.verify(t, b.Secret)
	if v.Code != "VALID" || v.Key == nil || v.Key.Role != "admin" || v.Key.ExpiresAt != nil {
		t.Errorf("verify the bootstrap key: %+v", v)
	}
	// The password is the line without its newline.
	if l := c.login(t, "ada@acme.example", bootPassword); l.User.ID != b.UserID {
		t.Errorf("login: user %s", l.User.ID)
	}
	c.fail(t, 401, "unauthenticated", "POST", "/v1/sessions", "", map[string]string{"email": "ada@acme.example", "password": bootPassword + "\n"})
	// The admin may do admin things with it.
	c.createUser(t, b.Secret, map[string]any{"email": "bob@acme.example", "name": "Bob", "roles": []string{"developer"}})
	c.createKey(t, b.Secret, map[string]any{"name": "second"})
	evs := c.events(t, b.Secret, nil)
	for _, want := range []string{"user.created", "key.created"} {
		if !slices.Contains(actions(evs), want) {
			t.Errorf("events %v, want %s", actions(evs), want)
		}
	}
	srv.close(t)
	assertNoLeaks(t, rec, map[string]string{"the server log": srv.log.String()}, mustJSON(t, evs), dir)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBootstrapPasswordLine: one line, its newline ("\n" or "\r\n") dropped,
// or the whole input when it has none.
func TestBootstrapPasswordLine(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "k.db")
	cases := map[string]string{
		"lf@acme.example":     bootPassword + "\n",
		"crlf@acme.example":   bootPassword + "\r\n",
		"eof@acme.example":    bootPassword,
		"second@acme.example": bootPassword + "\nnot the password\n",
	}
	for email, stdin := range cases {
		if code, _, stderr := runCmd(t, stdin, bootstrapArgs(db, "acme", email, "--password-stdin", "--json")...); code != 0 {
			t.Fatalf("bootstrap %s: exit %d, %s", email, code, stderr)
		}
	}
	srv := startServer(t, dir, &recorder{}, serverOpts{})
	for email := range cases {
		srv.c.login(t, email, bootPassword)
		for _, wrong := range []string{bootPassword + "\r", bootPassword + "\n"} {
			srv.c.fail(t, 401, "unauthenticated", "POST", "/v1/sessions", "", map[string]string{"email": email, "password": wrong})
		}
	}
}

func TestBootstrapTwice(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "k.db")
	first := mustBootstrap(t, nil, db, "acme", "ada@acme.example", bootPassword)

	for _, email := range []string{"ada@acme.example", "ADA@acme.example"} {
		for _, tenantName := range []string{"acme", "ACME"} {
			code, stdout, stderr := runCmd(t, bootPassword+"\n", bootstrapArgs(db, tenantName, email, "--password-stdin", "--json")...)
			if code != 1 {
				t.Errorf("second bootstrap of %s in %s: exit %d, want 1", email, tenantName, code)
			}
			if stdout != "" {
				t.Errorf("second bootstrap printed %q", stdout)
			}
			if !strings.Contains(stderr, "already exists") || !strings.Contains(strings.ToLower(stderr), "ada@acme.example") {
				t.Errorf("second bootstrap of %s in %s: stderr %q, want a clear message naming the email", email, tenantName, stderr)
			}
			if strings.Contains(stderr, "internal") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("second bootstrap: stderr %q, want one plain line", stderr)
			}
		}
	}

	// The same email in another tenant is another person.
	other := mustBootstrap(t, nil, db, "globex", "ada@acme.example", "another password 2")
	if other.TenantID == first.TenantID || other.UserID == first.UserID {
		t.Fatalf("other tenant: %+v, first: %+v", other, first)
	}
	srv := startServer(t, dir, &recorder{}, serverOpts{})
	c := srv.c
	// Nothing was added by the failed attempts.
	var users userList
	c.must(t, 200, "GET", "/v1/users", first.Secret, nil, &users)
	if users.Total != 1 || len(users.Users) != 1 || users.Users[0].ID != first.UserID {
		t.Errorf("users of the first tenant after the failed bootstraps: %+v", users)
	}
	if l := c.listKeys(t, first.Secret, nil); l.Total != 1 {
		t.Errorf("keys of the first tenant after the failed bootstraps: %v", ids(l.Keys))
	}
	for _, b := range []bootstrapOut{first, other} {
		var me meAnswer
		c.must(t, 200, "GET", "/v1/me", b.Secret, nil, &me)
		if me.Tenant.ID != b.TenantID || me.User.ID != b.UserID {
			t.Errorf("GET /v1/me with %s's key: %+v", b.TenantID, me)
		}
	}
	if l := c.login(t, "ada@acme.example", "another password 2"); l.User.TenantID != other.TenantID {
		t.Errorf("login with the second tenant's password: tenant %s", l.User.TenantID)
	}
	if l := c.login(t, "ada@acme.example", bootPassword); l.User.TenantID != first.TenantID {
		t.Errorf("login with the first tenant's password: tenant %s", l.User.TenantID)
	}
	c.fail(t, 404, "not_found", "GET", "/v1/keys/"+other.KeyID, first.Secret, nil)
}

func TestBootstrapRefusals(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "k.db")
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
	}{
		{"no tenant", "", []string{"admin", "bootstrap", "--db", db, "--email", "a@b.example"}},
		{"no email", "", []string{"admin", "bootstrap", "--db", db, "--tenant", "acme"}},
		{"no flags", "", []string{"admin", "bootstrap"}},
		{"no subcommand", "", []string{"admin"}},
		{"unknown subcommand", "", []string{"admin", "bootstrapp"}},
		{"unknown flag", "", bootstrapArgs(db, "acme", "a@b.example", "--pasword-stdin")},
		{"bad email", "", bootstrapArgs(db, "acme", "not an email")},
		{"bad db", "", bootstrapArgs("mysql://localhost/x", "acme", "a@b.example")},
		{"empty stdin", "", bootstrapArgs(db, "acme", "a@b.example", "--password-stdin")},
		{"short password", "short\n", bootstrapArgs(db, "acme", "a@b.example", "--password-stdin")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tc.stdin, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, stdout %q", stdout)
			}
			if stderr == "" {
				t.Error("no message on stderr")
			}
			if strings.Contains(stdout, "kw_") {
				t.Errorf("a failed bootstrap printed a secret: %q", stdout)
			}
		})
	}
	// None of them left anything behind.
	srv := startServer(t, dir, &recorder{}, serverOpts{})
	if code, _, stderr := runCmd(t, bootPassword, bootstrapArgs(db, "acme", "a@b.example", "--password-stdin")...); code != 0 {
		t.Fatalf("bootstrap after the refusals: exit %d, %s", code, stderr)
	}
	srv.c.login(t, "a@b.example", bootPassword)
}

// TestBootstrapEnv: every flag reads its KEYWARD_* variable; a flag given on
// the command line wins.
func TestBootstrapEnv(t *testing.T) {
	dir := t.TempDir()
	envDB := filepath.Join(dir, "env", "k.db")
	t.Setenv("KEYWARD_DB", "sqlite:"+envDB)

	code, stdout, stderr := runCmd(t, bootPassword+"\n", "admin", "bootstrap", "--tenant", "acme", "--email", "ada@acme.example",
		"--password-stdin", "--json")
	if code != 0 {
		t.Fatalf("exit %d, %s", code, stderr)
	}
	var b bootstrapOut
	if err := json.Unmarshal([]byte(stdout), &b); err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	if _, err := os.Stat(envDB); err != nil {
		t.Fatalf("KEYWARD_DB ignored: %v", err)
	}

	// Everything from the environment.
	t.Setenv("KEYWARD_TENANT", "acme")
	t.Setenv("KEYWARD_EMAIL", "bob@acme.example")
	t.Setenv("KEYWARD_PASSWORD_STDIN", "true")
	t.Setenv("KEYWARD_JSON", "true")
	code, stdout, stderr = runCmd(t, bootPassword+"\n", "admin", "bootstrap")
	if code != 0 {
		t.Fatalf("bootstrap from the environment: exit %d, %s", code, stderr)
	}
	var b2 bootstrapOut
	if err := json.Unmarshal([]byte(stdout), &b2); err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	if b2.TenantID != b.TenantID {
		t.Errorf("KEYWARD_TENANT: tenant %s, want %s", b2.TenantID, b.TenantID)
	}

	// A flag wins over its variable.
	flagDB := filepath.Join(dir, "flag", "k.db")
	code, _, stderr = runCmd(t, bootPassword+"\n", "admin", "bootstrap", "--db", "sqlite:"+flagDB, "--email", "cy@acme.example")
	if code != 0 {
		t.Fatalf("bootstrap with --db: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(flagDB); err != nil {
		t.Errorf("--db ignored for KEYWARD_DB: %v", err)
	}

	srv := startServer(t, filepath.Dir(envDB), &recorder{}, serverOpts{})
	srv.c.login(t, "ada@acme.example", bootPassword)
	srv.c.login(t, "bob@acme.example", bootPassword)
	srv.c.wantVerify(t, b.Secret, "VALID", b.KeyID)
	srv.c.wantVerify(t, b2.Secret, "VALID", b2.KeyID)
	srv.c.fail(t, 401, "unauthenticated", "POST", "/v1/sessions", "", map[string]string{"email": "cy@acme.example", "password": bootPassword})
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, stdout, stderr := runCmd(t, "", arg)
		v, ok := strings.CutPrefix(strings.TrimSpace(stdout), "keyward ")
		if code != 0 || !ok || v == "" || stderr != "" {
			t.Errorf("keyward %s: exit %d, stdout %q, stderr %q", arg, code, stdout, stderr)
		}
	}
}

// TestServeBuildsSearchIndex: on SQLite, serve builds the search index of
// every tenant in the background at start, and says so in its log.
func TestServeBuildsSearchIndex(t *testing.T) {
	dir := t.TempDir()
	mustBootstrap(t, nil, "sqlite:"+filepath.Join(dir, "k.db"), "acme", "ada@acme.example", bootPassword)
	srv := startServer(t, dir, &recorder{}, serverOpts{})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.log.String(), `"msg":"search index built","tenants":1,`) {
		if time.Now().After(deadline) {
			t.Fatalf("no \"search index built\" for the one tenant in the log:\n%s", srv.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
