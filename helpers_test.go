package keyward_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testclock"
	"github.com/keyward/keyward/sqlite"
)

// testPassword is every test person's password (≥ 12 characters).
const testPassword = "correct horse battery staple"

// testPepper is the server pepper of every test service.
var testPepper = []byte("keyward-test-pepper-0123456789abcdef")

// t0 is where every fake clock starts.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// env is one service over a real SQLite file, with its clock and everything
// the tests want to check afterwards.
type env struct {
	svc   *keyward.Service
	db    *sqlite.DB
	clock *testclock.Clock

	mu      sync.Mutex
	secrets []string // every secret and session token handed out, for the leak scans
	used    []string // key IDs reported through Options.OnUse
	changes []keyward.Change
}

// mustStore opens a fresh SQLite store in the test's temporary folder.
func mustStore(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "keyward.db"))
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return db
}

// mustService wires a Service to a fresh store, a fake clock at t0 and cheap
// password hashing.
func mustService(tb testing.TB) *env {
	tb.Helper()
	e := &env{db: mustStore(tb), clock: testclock.New(t0)}
	h, err := keyward.NewHasher(testPepper)
	if err != nil {
		tb.Fatalf("NewHasher: %v", err)
	}
	params := cheap
	e.svc = keyward.NewService(e.db, h, keyward.Options{
		Now:            e.clock.Now,
		PasswordParams: &params,
		OnUse: func(id string, _ time.Time) {
			e.mu.Lock()
			e.used = append(e.used, id)
			e.mu.Unlock()
		},
		OnChange: func(c keyward.Change) {
			e.mu.Lock()
			e.changes = append(e.changes, c)
			e.mu.Unlock()
		},
	})
	return e
}

func (e *env) remember(secret string) {
	e.mu.Lock()
	e.secrets = append(e.secrets, secret)
	e.mu.Unlock()
}

func (e *env) allSecrets() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.secrets...)
}

func (e *env) usedKeys() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.used...)
}

// caller is a credential, a session token or a key's secret, that tests turn
// into a real principal through Authenticate at every "request", so that rights
// are read afresh as the API does.
type caller struct {
	e      *env
	name   string
	cred   string
	userID string
	email  string
}

// p authenticates the caller now.
func (c *caller) p(tb testing.TB) *keyward.Principal {
	tb.Helper()
	p, err := c.e.svc.Authenticate(context.Background(), c.cred)
	if err != nil {
		tb.Fatalf("Authenticate(%s): %v", c.name, err)
	}
	return p
}

// tenant is a tenant made by Bootstrap: its administrator (tenant_admin and
// developer) logged in with a session, and the bootstrap admin key.
type tenant struct {
	ID       string
	Admin    *caller // session
	AdminKey *caller // the bootstrap admin key
	KeyID    string  // the bootstrap key's ID
}

// mustTenant creates a tenant through Bootstrap (keys switched on) and logs its
// administrator in.
func mustTenant(tb testing.TB, e *env, name string) *tenant {
	tb.Helper()
	pw := testPassword
	email := "admin@" + strings.ToLower(name) + ".example"
	res, err := e.svc.Bootstrap(context.Background(), keyward.BootstrapInput{
		Tenant: name, Email: email, Name: name + " Admin", Password: &pw})
	if err != nil {
		tb.Fatalf("Bootstrap(%s): %v", name, err)
	}
	e.remember(res.Secret)
	return &tenant{
		ID:       res.TenantID,
		Admin:    mustLogin(tb, e, email, res.TenantID),
		AdminKey: &caller{e: e, name: name + " bootstrap key", cred: res.Secret, userID: res.UserID, email: email},
		KeyID:    res.KeyID,
	}
}

// mustLogin opens a session for a person with testPassword.
func mustLogin(tb testing.TB, e *env, email, tenantID string) *caller {
	tb.Helper()
	res, err := e.svc.Login(context.Background(), email, testPassword, tenantID)
	if err != nil {
		tb.Fatalf("Login(%s): %v", email, err)
	}
	e.remember(res.Token)
	return &caller{e: e, name: email + " session", cred: res.Token, userID: res.User.ID, email: email}
}

// mustUser creates a user through an administrator. A person gets testPassword.
func mustUser(tb testing.TB, e *env, admin *caller, in keyward.UserInput) *keyward.User {
	tb.Helper()
	if in.Kind != keyward.KindSystem && in.Password == nil {
		pw := testPassword
		in.Password = &pw
	}
	if in.Name == "" {
		in.Name = strings.Split(in.Email, "@")[0]
	}
	u, err := e.svc.CreateUser(context.Background(), admin.p(tb), in)
	if err != nil {
		tb.Fatalf("CreateUser(%s): %v", in.Email, err)
	}
	return u
}

// mustPerson creates a person with the given roles and license and logs it in.
func mustPerson(tb testing.TB, e *env, admin *caller, email string, licensed bool, roles ...string) *caller {
	tb.Helper()
	if roles == nil {
		roles = []string{}
	}
	u := mustUser(tb, e, admin, keyward.UserInput{Email: email, Roles: roles, Licensed: &licensed})
	return mustLogin(tb, e, email, u.TenantID)
}

// mustKey creates a key as the caller and remembers its secret.
func mustKey(tb testing.TB, e *env, by *caller, in keyward.KeyInput) (*keyward.Key, string) {
	tb.Helper()
	if in.Name == "" {
		in.Name = "test key"
	}
	k, secret, err := e.svc.CreateKey(context.Background(), by.p(tb), in)
	if err != nil {
		tb.Fatalf("CreateKey(%s, %+v) by %s: %v", in.Name, in, by.name, err)
	}
	e.remember(secret)
	return k, secret
}

// mustKeyCaller creates a key and returns it as a credential.
func mustKeyCaller(tb testing.TB, e *env, by *caller, name, role string) *caller {
	tb.Helper()
	k, secret := mustKey(tb, e, by, keyward.KeyInput{Name: name, Role: role})
	return &caller{e: e, name: name, cred: secret, userID: k.OwnerID, email: by.email}
}

// mustSettings changes settings as an administrator.
func mustSettings(tb testing.TB, e *env, admin *caller, patch keyward.SettingsPatch) keyward.Settings {
	tb.Helper()
	s, err := e.svc.UpdateSettings(context.Background(), admin.p(tb), patch)
	if err != nil {
		tb.Fatalf("UpdateSettings: %v", err)
	}
	return s
}

// storedKey reads a key straight from the store, bypassing every permission.
func storedKey(tb testing.TB, e *env, tenantID, id string) *keyward.Key {
	tb.Helper()
	var k *keyward.Key
	err := e.db.View(context.Background(), func(tx keyward.Tx) (err error) {
		k, err = tx.KeyByID(context.Background(), tenantID, id)
		return err
	})
	if keyward.IsCode(err, keyward.ENotFound) {
		return nil
	}
	if err != nil {
		tb.Fatalf("KeyByID(%s): %v", id, err)
	}
	return k
}

// status is a key's status now, or "deleted".
func status(tb testing.TB, e *env, tenantID, id string) string {
	tb.Helper()
	k := storedKey(tb, e, tenantID, id)
	if k == nil {
		return "deleted"
	}
	return k.Status(e.clock.Now())
}

// allEvents reads every event of a tenant, newest first, straight from the store.
func allEvents(tb testing.TB, e *env, tenantID string, f keyward.EventFilter) []*keyward.Event {
	tb.Helper()
	f.TenantID = tenantID
	f.PageSize = 200
	var out []*keyward.Event
	for {
		var page *keyward.EventPage
		err := e.db.View(context.Background(), func(tx keyward.Tx) (err error) {
			page, err = tx.ListEvents(context.Background(), f)
			return err
		})
		if err != nil {
			tb.Fatalf("ListEvents: %v", err)
		}
		out = append(out, page.Events...)
		if page.NextPageToken == "" {
			return out
		}
		f.PageToken = page.NextPageToken
	}
}

// eventsSince are the tenant's events at or after t.
func eventsSince(tb testing.TB, e *env, tenantID string, t time.Time) []*keyward.Event {
	tb.Helper()
	return allEvents(tb, e, tenantID, keyward.EventFilter{Since: &t})
}

// wantCode fails the test unless err carries the contract code want ("" for success).
func wantCode(tb testing.TB, err error, want string) {
	tb.Helper()
	if got := keyward.ErrorCode(err); got != want {
		tb.Errorf("error %v (code %q), want code %q", err, got, want)
	}
}

// seenEvent is what the event tests compare of an event.
type seenEvent struct {
	Action        string
	Actor         keyward.Ref
	Target        keyward.Ref
	ActorUserID   string
	TargetOwnerID string
	IP            string
	UserAgent     string
	Details       map[string]any
}

// anything in a wanted Details map matches any value that is present.
const anything = "\x00anything"

func seen(ev *keyward.Event) seenEvent {
	return seenEvent{Action: ev.Action, Actor: ev.Actor, Target: ev.Target, ActorUserID: ev.ActorUserID,
		TargetOwnerID: ev.TargetOwnerID, IP: ev.IP, UserAgent: ev.UserAgent, Details: ev.Details}
}

// jsonNormal turns v into what a JSON round trip through the store gives back.
func jsonNormal(tb testing.TB, v map[string]any) map[string]any {
	tb.Helper()
	if v == nil {
		return map[string]any{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// diffEvents compares wanted events (details as Go values, anything allowed)
// with the events got, in order.
func diffEvents(tb testing.TB, want []seenEvent, got []*keyward.Event) string {
	tb.Helper()
	g := make([]seenEvent, len(got))
	for i, ev := range got {
		g[i] = seen(ev)
	}
	w := make([]seenEvent, len(want))
	for i, ev := range want {
		ev.Details = jsonNormal(tb, ev.Details)
		if i < len(g) {
			for k, v := range ev.Details {
				if v == anything {
					if gv, ok := g[i].Details[k]; ok {
						ev.Details[k] = gv
					}
				}
			}
		}
		w[i] = ev
	}
	return cmp.Diff(w, g)
}

// scanForSecrets fails the test if any remembered secret or token appears in s.
func scanForSecrets(tb testing.TB, e *env, where, s string) {
	tb.Helper()
	for _, secret := range e.allSecrets() {
		if strings.Contains(s, secret) {
			tb.Errorf("%s holds a secret: %.200s", where, s)
			return
		}
	}
}

// dump renders a value completely for the leak scans.
func dump(v any) string { return fmt.Sprintf("%+v %#v", v, v) }

func ptr[T any](v T) *T { return &v }

// changeLast replaces the last character of s with another base62 one.
func changeLast(s string) string {
	if s[len(s)-1] == '0' {
		return s[:len(s)-1] + "1"
	}
	return s[:len(s)-1] + "0"
}
