package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// want is the contract's answer to one caller on one route: a status and, for
// errors, the problem code (for /v1/auth, the X-Keyward-Code header).
type want struct {
	status int
	code   string
}

func (w want) String() string {
	if w.code == "" {
		return fmt.Sprint(w.status)
	}
	return fmt.Sprintf("%d %s", w.status, w.code)
}

var (
	s200    = want{status: http.StatusOK}
	s201    = want{status: http.StatusCreated}
	s204    = want{status: http.StatusNoContent}
	e400    = want{http.StatusBadRequest, keyward.EInvalid}
	e401    = want{http.StatusUnauthorized, keyward.EUnauthenticated}
	e403    = want{http.StatusForbidden, keyward.EPermissionDenied}
	e403dev = want{http.StatusForbidden, keyward.EDeveloperRequired}
	e404    = want{http.StatusNotFound, keyward.ENotFound}
	e409    = want{http.StatusConflict, keyward.EConflict}
	e409nr  = want{http.StatusConflict, keyward.ENotRevocable}
	// Forward authentication answers with X-Keyward-Code and no body.
	fa401 = want{http.StatusUnauthorized, keyward.CodeNotFound}
)

// caller is one column of the matrix.
type caller struct {
	name   string
	user   string // the user behind the caller; "" for anon
	tenant string
	admin  bool
	key    bool
	bearer string
	apiKey string
}

// Callers, in column order.
const (
	cAnon     = "anon"
	cAdmin    = "admin"     // tenant admin without developer, session
	cAdminDev = "admin+dev" // tenant admin and developer (bootstrap user), session
	cDev      = "dev"       // developer, session
	cPlain    = "plain"     // no roles, session
	cROKey    = "ro-key"    // the developer's readonly key (Authorization: Bearer)
	cAdminKey = "admin-key" // the developer's admin key (X-API-Key)
	cOther    = "other"     // tenant B's admin, session
)

var callerNames = []string{cAnon, cAdmin, cAdminDev, cDev, cPlain, cROKey, cAdminKey, cOther}

func (f *fixture) caller(name string) caller {
	switch name {
	case cAnon:
		return caller{name: name}
	case cAdmin:
		return caller{name: name, user: f.admin.ID, tenant: f.tenantA, admin: true, bearer: f.admin.Token}
	case cAdminDev:
		return caller{name: name, user: f.adminDev.ID, tenant: f.tenantA, admin: true, bearer: f.adminDev.Token}
	case cDev:
		return caller{name: name, user: f.dev.ID, tenant: f.tenantA, bearer: f.dev.Token}
	case cPlain:
		return caller{name: name, user: f.plain.ID, tenant: f.tenantA, bearer: f.plain.Token}
	case cROKey:
		return caller{name: name, user: f.dev.ID, tenant: f.tenantA, key: true, bearer: f.devRO.Secret}
	case cAdminKey:
		return caller{name: name, user: f.dev.ID, tenant: f.tenantA, key: true, apiKey: f.devAdmin.Secret}
	case cOther:
		return caller{name: name, user: f.otherAdmin.ID, tenant: f.tenantB, admin: true, bearer: f.otherAdmin.Token}
	}
	panic("unknown caller " + name)
}

// byCaller is one row's answers; a zero entry is a missing entry and fails.
type byCaller struct {
	anon, admin, adminDev, dev, plain, roKey, adminKey, other want
}

func (b byCaller) of(name string) want {
	return map[string]want{cAnon: b.anon, cAdmin: b.admin, cAdminDev: b.adminDev, cDev: b.dev, cPlain: b.plain,
		cROKey: b.roKey, cAdminKey: b.adminKey, cOther: b.other}[name]
}

// everyone is the same answer for every caller (public routes).
func everyone(w want) byCaller { return byCaller{w, w, w, w, w, w, w, w} }

// row is one line of the matrix: a route, how to fill {id} and the body,
// and every caller's answer.
type row struct {
	method, pattern string
	what            string // the variant: whose object, which body
	id              func(tb testing.TB, f *fixture, c caller) string
	query           func(f *fixture) string // appended to the path
	body            func(f *fixture, c caller, id string) any
	// fresh renews the callers' sessions and keys before each cell: the
	// call destroys what other cells rely on.
	fresh bool
	want  byCaller
	// check looks at the contents of a 2xx answer.
	check func(t *testing.T, f *fixture, c caller, id string, r reply)
}

func (r row) route() string { return r.method + " " + r.pattern }

func (r row) name() string {
	if r.what == "" {
		return r.route()
	}
	return r.route() + " [" + r.what + "]"
}

// ownerUser is the user ID behind one of the fixture's key owners.
func (f *fixture) ownerUser(owner string) (tenant, user string) {
	switch owner {
	case ownerDev:
		return f.tenantA, f.dev.ID
	case ownerAdminDev:
		return f.tenantA, f.adminDev.ID
	case ownerPlain:
		return f.tenantA, f.plain.ID
	case ownerSystem:
		return f.tenantA, f.systemID
	case ownerOther:
		return f.tenantB, f.otherAdmin.ID
	}
	panic("unknown owner " + owner)
}

// sees is the contract's visibility of a key of owner to c.
func (f *fixture) sees(c caller, owner string) bool {
	tenant, user := f.ownerUser(owner)
	return c.tenant == tenant && (c.admin || c.user == user)
}

// Targets for {id}.
func keyOf(owner string) func(testing.TB, *fixture, caller) string {
	return func(tb testing.TB, f *fixture, _ caller) string { return f.newKey(tb, owner) }
}

func inactiveKeyOf(owner string) func(testing.TB, *fixture, caller) string {
	return func(tb testing.TB, f *fixture, _ caller) string { return f.deactivated(tb, owner) }
}

func revokedKeyOf(owner string) func(testing.TB, *fixture, caller) string {
	return func(tb testing.TB, f *fixture, _ caller) string { return f.revoked(tb, owner) }
}

func fixed(get func(f *fixture) string) func(testing.TB, *fixture, caller) string {
	return func(_ testing.TB, f *fixture, _ caller) string { return get(f) }
}

func self(_ testing.TB, f *fixture, c caller) string {
	if c.user == "" {
		return f.dev.ID // anon: any existing user; the answer is 401 anyway
	}
	return c.user
}

// freshUser creates a user for one cell in the tenant of the given root.
func freshUser(kind string, tenantB bool) func(testing.TB, *fixture, caller) string {
	return func(tb testing.TB, f *fixture, c caller) string {
		root, domain := f.rootA, "acme.test"
		if tenantB {
			root, domain = f.rootB, "globex.test"
		}
		email := fmt.Sprintf("fresh-%s-%s@%s", kind, strings.ReplaceAll(c.name, "+", "-"), domain)
		return f.mustUser(tb, f.principal(tb, root), email, kind).ID
	}
}

func jsonBody(v any) func(*fixture, caller, string) any {
	return func(*fixture, caller, string) any { return v }
}

// keyJSON is what the checks read of a Key.
type keyJSON struct {
	ID           string   `json:"id"`
	TenantID     string   `json:"tenant_id"`
	Name         string   `json:"name"`
	OwnerID      string   `json:"owner_id"`
	Type         string   `json:"type"`
	Role         string   `json:"role"`
	Scopes       []string `json:"scopes"`
	Status       string   `json:"status"`
	Secret       string   `json:"secret"`
	RevokedBy    *string  `json:"revoked_by"`
	RevokeReason *string  `json:"revoke_reason"`
}

type userJSON struct {
	ID       string   `json:"id"`
	TenantID string   `json:"tenant_id"`
	Kind     string   `json:"kind"`
	Roles    []string `json:"roles"`
	Name     string   `json:"name"`
}

type refJSON struct {
	Type, ID string
}

type eventJSON struct {
	TenantID string  `json:"tenant_id"`
	Action   string  `json:"action"`
	Actor    refJSON `json:"actor"`
	Target   refJSON `json:"target"`
}

type bulkJSON struct {
	Revoked int `json:"revoked"`
	Failed  []struct {
		ID, Code, Message string
	} `json:"failed"`
}

// keysOf lists (as tenant admin) the IDs of an owner's keys.
func (f *fixture) keysOf(tb testing.TB, tenant, owner string) []string {
	tb.Helper()
	root := f.rootA
	if tenant == f.tenantB {
		root = f.rootB
	}
	page, err := f.svc.ListKeys(context.Background(), f.principal(tb, root), keyward.KeyQuery{OwnerID: owner, PageSize: 200})
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for _, k := range page.Keys {
		ids = append(ids, k.ID)
	}
	return ids
}

// keyStatus reads a key's status as its tenant's admin sees it ("gone" when deleted).
func (f *fixture) keyStatus(tb testing.TB, owner, id string) string {
	tb.Helper()
	k, err := f.svc.GetKey(context.Background(), f.rootFor(tb, owner), id)
	if keyward.IsCode(err, keyward.ENotFound) {
		return "gone"
	}
	if err != nil {
		tb.Fatal(err)
	}
	return k.Status(f.svc.Now())
}

func checkKeyStatus(status string) func(*testing.T, *fixture, caller, string, reply) {
	return func(t *testing.T, f *fixture, c caller, id string, r reply) {
		var k keyJSON
		r.decode(t, &k)
		if k.ID != id || k.Status != status {
			t.Errorf("got key %s status %q, want %s status %q", k.ID, k.Status, id, status)
		}
	}
}

func checkRevoked(t *testing.T, f *fixture, c caller, id string, r reply) {
	var k keyJSON
	r.decode(t, &k)
	if k.ID != id || k.Status != keyward.StatusRevoked || k.RevokedBy == nil || *k.RevokedBy != c.user ||
		k.RevokeReason == nil || *k.RevokeReason != "matrix" {
		t.Errorf("revoked key = %+v, want %s revoked by %s for \"matrix\"", k, id, c.user)
	}
}

func checkDeleted(owner string) func(*testing.T, *fixture, caller, string, reply) {
	return func(t *testing.T, f *fixture, c caller, id string, r reply) {
		if st := f.keyStatus(t, owner, id); st != "gone" {
			t.Errorf("deleted key %s is still there (%s)", id, st)
		}
	}
}

func checkRotated(owner string) func(*testing.T, *fixture, caller, string, reply) {
	return func(t *testing.T, f *fixture, c caller, id string, r reply) {
		var k keyJSON
		r.decode(t, &k)
		_, user := f.ownerUser(owner)
		if k.ID == "" || k.ID == id || k.OwnerID != user || k.Status != keyward.StatusActive ||
			!strings.HasPrefix(k.Secret, "kw_") || k.Name != "target "+owner {
			t.Errorf("rotated key = %+v, want a new active key of %s named like %s", k, user, id)
		}
	}
}

// checkBulkByID: a visible key is revoked, anything else is reported not_found.
func checkBulkByID(owner string, alreadyRevoked bool) func(*testing.T, *fixture, caller, string, reply) {
	return func(t *testing.T, f *fixture, c caller, id string, r reply) {
		var b bulkJSON
		r.decode(t, &b)
		switch {
		case !f.sees(c, owner):
			if b.Revoked != 0 || len(b.Failed) != 1 || b.Failed[0].ID != id || b.Failed[0].Code != keyward.ENotFound {
				t.Errorf("bulk revoke of an invisible key = %+v, want 0 revoked and %s not_found", b, id)
			}
			if st := f.keyStatus(t, owner, id); !alreadyRevoked && st != keyward.StatusActive {
				t.Errorf("invisible key %s is %s after the refused bulk revoke", id, st)
			}
		case alreadyRevoked:
			if b.Revoked != 0 || len(b.Failed) != 1 || b.Failed[0].Code != keyward.ENotRevocable ||
				b.Failed[0].Message != "Unable to Revoke API Key" {
				t.Errorf("bulk revoke of a revoked key = %+v, want not_revocable \"Unable to Revoke API Key\"", b)
			}
		default:
			if b.Revoked != 1 || len(b.Failed) != 0 {
				t.Errorf("bulk revoke = %+v, want 1 revoked", b)
			}
			if st := f.keyStatus(t, owner, id); st != keyward.StatusRevoked {
				t.Errorf("key %s is %s after bulk revoke", id, st)
			}
		}
	}
}

// checkBulkSet: a revocation by type or all touches exactly the caller
// tenant's keys of that type, and nothing of the other tenant.
func checkBulkSet(typ string) func(*testing.T, *fixture, caller, string, reply) {
	return func(t *testing.T, f *fixture, c caller, _ string, r reply) {
		var b bulkJSON
		r.decode(t, &b)
		want := map[string]string{} // key ID → status after
		var hit int
		add := func(owner, id, kind string) {
			tenant, _ := f.ownerUser(owner)
			st := keyward.StatusActive
			if tenant == c.tenant && (typ == "" || typ == kind) {
				st = keyward.StatusRevoked
				hit++
			}
			want[id] = st
			if got := f.keyStatus(t, owner, id); got != st {
				t.Errorf("after revoking %q of tenant %s: key %s of %s is %s, want %s", typ, c.tenant, id, owner, got, st)
			}
		}
		if c.name == cAdmin { // the first cell in tenant A to succeed: later ones find it revoked already
			add(ownerAdminDev, f.bootAID, keyward.KindUser) // an administrator's own key
		}
		add(ownerDev, f.devRO.ID, keyward.KindUser)
		add(ownerDev, f.devAdmin.ID, keyward.KindUser)
		add(ownerSystem, f.sysKey.ID, keyward.KindSystem)
		add(ownerPlain, f.plainKey.ID, keyward.KindUser)
		add(ownerOther, f.otherKey.ID, keyward.KindUser)
		if b.Revoked < hit || len(b.Failed) != 0 {
			t.Errorf("bulk revoke = %+v, want at least %d revoked and no failures", b, hit)
		}
	}
}

func checkMe(t *testing.T, f *fixture, c caller, _ string, r reply) {
	var me struct {
		User   userJSON          `json:"user"`
		Tenant map[string]string `json:"tenant"`
		Key    *keyJSON          `json:"key"`
	}
	r.decode(t, &me)
	if me.User.ID != c.user || me.Tenant["id"] != c.tenant || (me.Key != nil) != c.key {
		t.Errorf("me = %+v, want user %s of %s, key present %v", me, c.user, c.tenant, c.key)
	}
}

// checkKeyList: a tenant admin sees the tenant's keys (of several owners),
// anyone else exactly their own, and nobody anything of the other tenant.
func checkKeyList(t *testing.T, f *fixture, c caller, _ string, r reply) {
	var page struct {
		Keys  []keyJSON `json:"keys"`
		Total int       `json:"total"`
	}
	r.decode(t, &page)
	owners := map[string]bool{}
	for _, k := range page.Keys {
		owners[k.OwnerID] = true
		if k.TenantID != c.tenant || !c.admin && k.OwnerID != c.user {
			t.Errorf("%s sees key %s of %s in tenant %s", c.name, k.ID, k.OwnerID, k.TenantID)
		}
		if k.Secret != "" {
			t.Errorf("a listed key shows its secret")
		}
	}
	var want []string
	if c.admin {
		for _, u := range []string{f.adminDev.ID, f.dev.ID, f.plain.ID, f.systemID} {
			if c.tenant == f.tenantA {
				want = append(want, f.keysOf(t, f.tenantA, u)...)
			}
		}
		if c.tenant == f.tenantB {
			want = f.keysOf(t, f.tenantB, f.otherAdmin.ID)
		}
	} else {
		want = f.keysOf(t, c.tenant, c.user)
	}
	var got []string
	for _, k := range page.Keys {
		got = append(got, k.ID)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) || page.Total != len(want) || len(want) == 0 {
		t.Errorf("%s lists keys %v (total %d), want %v", c.name, got, page.Total, want)
	}
}

// checkOwnerFilter: filtering by another owner shows a non-admin nothing.
func checkOwnerFilter(t *testing.T, f *fixture, c caller, _ string, r reply) {
	var page struct {
		Keys  []keyJSON `json:"keys"`
		Total int       `json:"total"`
	}
	r.decode(t, &page)
	if c.admin && c.tenant == f.tenantA {
		if len(page.Keys) == 0 || page.Total != len(page.Keys) {
			t.Errorf("admin filtering by the system user sees %d keys (total %d)", len(page.Keys), page.Total)
		}
		for _, k := range page.Keys {
			if k.OwnerID != f.systemID {
				t.Errorf("owner filter let through key %s of %s", k.ID, k.OwnerID)
			}
		}
		return
	}
	if len(page.Keys) != 0 || page.Total != 0 {
		t.Errorf("%s filtering by another owner sees %d keys (total %d)", c.name, len(page.Keys), page.Total)
	}
}

func checkUserList(t *testing.T, f *fixture, c caller, _ string, r reply) {
	var page struct {
		Users []userJSON `json:"users"`
		Total int        `json:"total"`
	}
	r.decode(t, &page)
	got := map[string]bool{}
	for _, u := range page.Users {
		got[u.ID] = true
		if u.TenantID != c.tenant {
			t.Errorf("%s sees user %s of tenant %s", c.name, u.ID, u.TenantID)
		}
	}
	want := []string{f.otherAdmin.ID}
	if c.tenant == f.tenantA {
		want = []string{f.adminDev.ID, f.admin.ID, f.dev.ID, f.plain.ID, f.systemID}
	}
	for _, id := range want {
		if !got[id] {
			t.Errorf("%s does not see user %s", c.name, id)
		}
	}
	if len(got) != len(want) || page.Total != len(want) {
		t.Errorf("%s sees %d users (total %d), want %d", c.name, len(got), page.Total, len(want))
	}
}

// checkEvents: a tenant admin sees the tenant's events, including other
// people's; anyone else only the events they did or that concern them or
// their keys; nobody sees the other tenant's.
func checkEvents(t *testing.T, f *fixture, c caller, _ string, r reply) {
	var page struct {
		Events []eventJSON `json:"events"`
		Total  int         `json:"total"`
	}
	r.decode(t, &page)
	if len(page.Events) == 0 {
		t.Fatalf("%s sees no events", c.name)
	}
	mine := map[string]bool{c.user: true}
	for _, id := range f.keysOf(t, c.tenant, c.user) {
		mine[id] = true
	}
	others := 0
	for _, e := range page.Events {
		if e.TenantID != c.tenant {
			t.Errorf("%s sees event %s of tenant %s", c.name, e.Action, e.TenantID)
		}
		related := mine[e.Actor.ID] || mine[e.Target.ID]
		if !related {
			others++
		}
		if !c.admin && !related {
			t.Errorf("%s sees event %s by %s on %s, which is not about it", c.name, e.Action, e.Actor.ID, e.Target.ID)
		}
	}
	if c.admin && c.tenant == f.tenantA && others == 0 {
		t.Errorf("tenant admin %s sees only events about itself", c.name)
	}
}

func checkSettings(days int) func(*testing.T, *fixture, caller, string, reply) {
	return func(t *testing.T, f *fixture, c caller, _ string, r reply) {
		var s keyward.Settings
		r.decode(t, &s)
		wantMax := 1000 // set by the fixture
		if c.tenant == f.tenantB {
			wantMax = 999
		}
		if s.MaxKeysPerUser != wantMax || s.ExpiryNoticeDays != days || !s.APIKeysEnabled {
			t.Errorf("%s reads settings %+v, want max_keys_per_user %d and expiry_notice_days %d", c.name, s, wantMax, days)
		}
	}
}

func checkForwardAuth(t *testing.T, f *fixture, c caller, _ string, r reply) {
	key := f.devRO.ID
	if c.name == cAdminKey {
		key = f.devAdmin.ID
	}
	h := r.Header
	if h.Get("X-Keyward-Key-Id") != key || h.Get("X-Keyward-Tenant-Id") != f.tenantA || h.Get("X-Keyward-Owner-Id") != f.dev.ID ||
		h.Get("X-Keyward-Key-Role") == "" || len(r.Body) != 0 {
		t.Errorf("forward auth answer %v, body %q: want key %s of %s", h, r.Body, key, f.dev.ID)
	}
}

// matrix is every route × every caller.
func matrix() []row {
	kD, kP, kAD, kS, kB := keyOf(ownerDev), keyOf(ownerPlain), keyOf(ownerAdminDev), keyOf(ownerSystem), keyOf(ownerOther)
	// Answers for a key of the developer, of the plain user, of the admin
	// (and developer), of the system user and of tenant B when the caller may
	// act on what it sees (deactivate, reactivate, revoke).
	stateD := byCaller{anon: e401, admin: s200, adminDev: s200, dev: s200, plain: e404, roKey: e403, adminKey: s200, other: e404}
	stateP := byCaller{anon: e401, admin: s200, adminDev: s200, dev: e404, plain: s200, roKey: e403, adminKey: e404, other: e404}
	stateS := byCaller{anon: e401, admin: s200, adminDev: s200, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: e404}
	stateB := byCaller{anon: e401, admin: e404, adminDev: e404, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: s200}
	// Bulk revoke by ids always answers 200 to whoever may write; what it
	// revoked depends on visibility (see checkBulkByID).
	bulkIDs := byCaller{anon: e401, admin: s200, adminDev: s200, dev: s200, plain: s200, roKey: e403, adminKey: s200, other: s200}
	bulkSet := byCaller{anon: e401, admin: s200, adminDev: s200, dev: e403, plain: e403, roKey: e403, adminKey: e403, other: s200}
	bulkBody := func(f *fixture, c caller, id string) any {
		return map[string]any{"ids": []string{id}, "reason": "matrix"}
	}
	authed200 := byCaller{anon: e401, admin: s200, adminDev: s200, dev: s200, plain: s200, roKey: s200, adminKey: s200, other: s200}
	adminOnlyWrite := func(ok want) byCaller {
		return byCaller{anon: e401, admin: ok, adminDev: ok, dev: e403, plain: e403, roKey: e403, adminKey: e403, other: ok}
	}
	forward := byCaller{anon: fa401, admin: fa401, adminDev: fa401, dev: fa401, plain: fa401, roKey: s200, adminKey: s200, other: fa401}
	rename := jsonBody(map[string]string{"name": "renamed"})
	reason := jsonBody(map[string]string{"reason": "matrix"})

	rows := []row{
		// Sessions and me.
		{method: "POST", pattern: "/v1/sessions", want: everyone(s201),
			body: func(f *fixture, _ caller, _ string) any {
				return map[string]string{"email": f.dev.Email, "password": testPassword}
			},
			check: func(t *testing.T, f *fixture, c caller, _ string, r reply) {
				var s struct {
					Token string   `json:"token"`
					User  userJSON `json:"user"`
				}
				r.decode(t, &s)
				if s.Token == "" || s.User.ID != f.dev.ID {
					t.Errorf("login answered %+v", s)
				}
			}},
		{method: "DELETE", pattern: "/v1/sessions/current", fresh: true,
			want: byCaller{anon: e401, admin: s204, adminDev: s204, dev: s204, plain: s204, roKey: e403, adminKey: e400, other: s204},
			check: func(t *testing.T, f *fixture, c caller, _ string, r reply) {
				if r := f.send(t, req{method: "GET", path: "/v1/me", bearer: c.bearer}); r.Status != http.StatusUnauthorized {
					t.Errorf("the session still works after logout: %s", r)
				}
			}},
		{method: "GET", pattern: "/v1/me", want: authed200, check: checkMe},

		// Users.
		{method: "GET", pattern: "/v1/users", check: checkUserList,
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: e403, plain: e403, roKey: e403, adminKey: e403, other: s200}},
		{method: "POST", pattern: "/v1/users", what: "person", want: adminOnlyWrite(s201),
			body: func(f *fixture, c caller, _ string) any {
				return map[string]any{"email": "new-" + strings.ReplaceAll(c.name, "+", "-") + "@example.test", "name": "New",
					"kind": "user", "roles": []string{"developer"}, "password": testPassword}
			},
			check: func(t *testing.T, f *fixture, c caller, _ string, r reply) {
				var u userJSON
				r.decode(t, &u)
				if u.TenantID != c.tenant || u.Kind != "user" || !slices.Equal(u.Roles, []string{"developer"}) {
					t.Errorf("created user %+v", u)
				}
			}},
		{method: "POST", pattern: "/v1/users", what: "system user", want: adminOnlyWrite(s201),
			body: func(f *fixture, c caller, _ string) any {
				return map[string]any{"email": "svc-" + strings.ReplaceAll(c.name, "+", "-") + "@example.test", "name": "Service", "kind": "system"}
			},
			check: func(t *testing.T, f *fixture, c caller, _ string, r reply) {
				var u userJSON
				r.decode(t, &u)
				if u.TenantID != c.tenant || u.Kind != "system" {
					t.Errorf("created user %+v", u)
				}
			}},
		{method: "GET", pattern: "/v1/users/{id}", what: "developer", id: fixed(func(f *fixture) string { return f.dev.ID }),
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: s200, plain: e404, roKey: s200, adminKey: s200, other: e404}},
		{method: "GET", pattern: "/v1/users/{id}", what: "system user", id: fixed(func(f *fixture) string { return f.systemID }),
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: e404, plain: e404, roKey: e404, adminKey: e404, other: e404}},
		{method: "GET", pattern: "/v1/users/{id}", what: "self", id: self, want: authed200,
			check: func(t *testing.T, f *fixture, c caller, id string, r reply) {
				if u := r.object(t); u["id"] != c.user {
					t.Errorf("self = %v, want %s", u["id"], c.user)
				}
			}},
		{method: "GET", pattern: "/v1/users/{id}", what: "admin of B", id: fixed(func(f *fixture) string { return f.otherAdmin.ID }),
			want: byCaller{anon: e401, admin: e404, adminDev: e404, dev: e404, plain: e404, roKey: e404, adminKey: e404, other: s200}},
		{method: "PATCH", pattern: "/v1/users/{id}", what: "developer's name", id: fixed(func(f *fixture) string { return f.dev.ID }),
			body: jsonBody(map[string]string{"name": "Dana R."}),
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: s200, plain: e404, roKey: e403, adminKey: s200, other: e404}},
		{method: "PATCH", pattern: "/v1/users/{id}", what: "system user's name", id: fixed(func(f *fixture) string { return f.systemID }),
			body: jsonBody(map[string]string{"name": "Billing 2"}),
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: e404}},
		{method: "PATCH", pattern: "/v1/users/{id}", what: "own roles", id: self,
			body: jsonBody(map[string][]string{"roles": {"tenant_admin", "developer"}}),
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: e403, plain: e403, roKey: e403, adminKey: e403, other: s200},
			check: func(t *testing.T, f *fixture, c caller, id string, r reply) {
				var u userJSON
				r.decode(t, &u)
				if !slices.Equal(u.Roles, []string{"tenant_admin", "developer"}) {
					t.Errorf("an admin giving itself developer got roles %v", u.Roles)
				}
			}},
		{method: "PATCH", pattern: "/v1/users/{id}", what: "admin of B", id: fixed(func(f *fixture) string { return f.otherAdmin.ID }),
			body: jsonBody(map[string]string{"name": "Bob B."}),
			want: byCaller{anon: e401, admin: e404, adminDev: e404, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: s200}},
		// Another user is invisible to a non-admin (404, as on GET and PATCH);
		// itself is visible, so deleting it is 403 (409 for an admin).
		{method: "DELETE", pattern: "/v1/users/{id}", what: "fresh person of A", id: freshUser(keyward.KindUser, false),
			want: byCaller{anon: e401, admin: s204, adminDev: s204, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: e404}},
		{method: "DELETE", pattern: "/v1/users/{id}", what: "fresh system user", id: freshUser(keyward.KindSystem, false),
			want: byCaller{anon: e401, admin: s204, adminDev: s204, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: e404}},
		{method: "DELETE", pattern: "/v1/users/{id}", what: "self", id: self,
			want: byCaller{anon: e401, admin: e409, adminDev: e409, dev: e403, plain: e403, roKey: e403, adminKey: e403, other: e409}},
		{method: "DELETE", pattern: "/v1/users/{id}", what: "person of B", id: freshUser(keyward.KindUser, true),
			want: byCaller{anon: e401, admin: e404, adminDev: e404, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: s204}},

		// Keys: list and create.
		{method: "GET", pattern: "/v1/keys", want: authed200, check: checkKeyList},
		{method: "GET", pattern: "/v1/keys", what: "owner_id of the system user", want: authed200, check: checkOwnerFilter,
			query: func(f *fixture) string { return "?owner_id=" + f.systemID }},
		{method: "POST", pattern: "/v1/keys", what: "for oneself",
			body: jsonBody(map[string]any{"name": "mine", "role": "admin", "scopes": []string{"x:read"}}),
			want: byCaller{anon: e401, admin: e403dev, adminDev: s201, dev: s201, plain: e403dev, roKey: e403, adminKey: s201, other: s201},
			check: func(t *testing.T, f *fixture, c caller, _ string, r reply) {
				var k keyJSON
				r.decode(t, &k)
				if k.OwnerID != c.user || k.TenantID != c.tenant || k.Status != "active" || !strings.HasPrefix(k.Secret, "kw_") ||
					k.Type != "user" || k.Role != "admin" || !slices.Equal(k.Scopes, []string{"x:read"}) {
					t.Errorf("created key %+v", k)
				}
			}},
		{method: "POST", pattern: "/v1/keys", what: "for the system user",
			body: func(f *fixture, _ caller, _ string) any { return map[string]any{"name": "svc", "owner_id": f.systemID} },
			want: byCaller{anon: e401, admin: s201, adminDev: s201, dev: e403, plain: e403, roKey: e403, adminKey: e403, other: e404},
			check: func(t *testing.T, f *fixture, c caller, _ string, r reply) {
				var k keyJSON
				r.decode(t, &k)
				if k.OwnerID != f.systemID || k.Type != "system" || k.Role != "readonly" || k.Secret == "" {
					t.Errorf("created system key %+v", k)
				}
			}},
		{method: "POST", pattern: "/v1/keys", what: "for the developer",
			body: func(f *fixture, _ caller, _ string) any { return map[string]any{"name": "dev's", "owner_id": f.dev.ID} },
			want: byCaller{anon: e401, admin: e403, adminDev: e403, dev: s201, plain: e403, roKey: e403, adminKey: s201, other: e404}},
		{method: "POST", pattern: "/v1/keys/verify", want: everyone(s200),
			body: func(f *fixture, _ caller, _ string) any { return map[string]string{"key": f.devRO.Secret} },
			check: func(t *testing.T, f *fixture, c caller, _ string, r reply) {
				if v := r.object(t); v["code"] != keyward.CodeValid || v["valid"] != true {
					t.Errorf("verify = %v", v)
				}
			}},

		// Bulk revocation.
		{method: "POST", pattern: "/v1/keys/revoke", what: "ids: developer's key", id: kD, body: bulkBody, want: bulkIDs,
			check: checkBulkByID(ownerDev, false)},
		{method: "POST", pattern: "/v1/keys/revoke", what: "ids: plain user's key", id: kP, body: bulkBody, want: bulkIDs,
			check: checkBulkByID(ownerPlain, false)},
		{method: "POST", pattern: "/v1/keys/revoke", what: "ids: system key", id: kS, body: bulkBody, want: bulkIDs,
			check: checkBulkByID(ownerSystem, false)},
		{method: "POST", pattern: "/v1/keys/revoke", what: "ids: B's key", id: kB, body: bulkBody, want: bulkIDs,
			check: checkBulkByID(ownerOther, false)},
		{method: "POST", pattern: "/v1/keys/revoke", what: "ids: revoked key of the developer", id: revokedKeyOf(ownerDev),
			body: bulkBody, want: bulkIDs, check: checkBulkByID(ownerDev, true)},
		{method: "POST", pattern: "/v1/keys/revoke", what: "type user", fresh: true, want: bulkSet, check: checkBulkSet("user"),
			body: jsonBody(map[string]string{"type": "user"})},
		{method: "POST", pattern: "/v1/keys/revoke", what: "type system", fresh: true, want: bulkSet, check: checkBulkSet("system"),
			body: jsonBody(map[string]string{"type": "system"})},
		{method: "POST", pattern: "/v1/keys/revoke", what: "all", fresh: true, want: bulkSet, check: checkBulkSet(""),
			body: jsonBody(map[string]any{"all": true, "reason": "incident"})},

		// One key.
		{method: "GET", pattern: "/v1/keys/{id}", what: "developer's key", id: kD, check: checkKeyStatus("active"),
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: s200, plain: e404, roKey: s200, adminKey: s200, other: e404}},
		{method: "GET", pattern: "/v1/keys/{id}", what: "plain user's key", id: kP, check: checkKeyStatus("active"),
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: e404, plain: s200, roKey: e404, adminKey: e404, other: e404}},
		{method: "GET", pattern: "/v1/keys/{id}", what: "system key", id: kS, check: checkKeyStatus("active"),
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: e404, plain: e404, roKey: e404, adminKey: e404, other: e404}},
		{method: "GET", pattern: "/v1/keys/{id}", what: "B's key", id: kB, check: checkKeyStatus("active"),
			want: byCaller{anon: e401, admin: e404, adminDev: e404, dev: e404, plain: e404, roKey: e404, adminKey: e404, other: s200}},

		{method: "GET", pattern: "/v1/keys/{id}/usage", what: "developer's key", id: kD,
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: s200, plain: e404, roKey: s200, adminKey: s200, other: e404}},
		{method: "GET", pattern: "/v1/keys/{id}/usage", what: "system key", id: kS,
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: e404, plain: e404, roKey: e404, adminKey: e404, other: e404}},
		{method: "GET", pattern: "/v1/keys/{id}/usage", what: "B's key", id: kB,
			want: byCaller{anon: e401, admin: e404, adminDev: e404, dev: e404, plain: e404, roKey: e404, adminKey: e404, other: s200}},

		{method: "PATCH", pattern: "/v1/keys/{id}", what: "developer's key", id: kD, body: rename,
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: s200, plain: e404, roKey: e403, adminKey: s200, other: e404},
			check: func(t *testing.T, f *fixture, c caller, id string, r reply) {
				if k := r.object(t); k["name"] != "renamed" || k["id"] != id {
					t.Errorf("renamed key = %v", k)
				}
			}},
		{method: "PATCH", pattern: "/v1/keys/{id}", what: "plain user's key", id: kP, body: rename,
			want: byCaller{anon: e401, admin: s200, adminDev: s200, dev: e404, plain: e403, roKey: e403, adminKey: e404, other: e404}},
		{method: "PATCH", pattern: "/v1/keys/{id}", what: "system key", id: kS, body: rename, want: stateS},
		{method: "PATCH", pattern: "/v1/keys/{id}", what: "B's key", id: kB, body: rename, want: stateB},

		{method: "DELETE", pattern: "/v1/keys/{id}", what: "developer's key", id: kD, check: checkDeleted(ownerDev),
			want: byCaller{anon: e401, admin: e403, adminDev: e403, dev: s204, plain: e404, roKey: e403, adminKey: s204, other: e404}},
		{method: "DELETE", pattern: "/v1/keys/{id}", what: "plain user's key", id: kP, check: checkDeleted(ownerPlain),
			want: byCaller{anon: e401, admin: e403, adminDev: e403, dev: e404, plain: e403, roKey: e403, adminKey: e404, other: e404}},
		{method: "DELETE", pattern: "/v1/keys/{id}", what: "admin+developer's key", id: kAD, check: checkDeleted(ownerAdminDev),
			want: byCaller{anon: e401, admin: e403, adminDev: s204, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: e404}},
		{method: "DELETE", pattern: "/v1/keys/{id}", what: "system key", id: kS, check: checkDeleted(ownerSystem),
			want: byCaller{anon: e401, admin: s204, adminDev: s204, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: e404}},
		{method: "DELETE", pattern: "/v1/keys/{id}", what: "B's key", id: kB, check: checkDeleted(ownerOther),
			want: byCaller{anon: e401, admin: e404, adminDev: e404, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: s204}},

		{method: "POST", pattern: "/v1/keys/{id}/deactivate", what: "developer's key", id: kD, want: stateD, check: checkKeyStatus("inactive")},
		{method: "POST", pattern: "/v1/keys/{id}/deactivate", what: "plain user's key", id: kP, want: stateP, check: checkKeyStatus("inactive")},
		{method: "POST", pattern: "/v1/keys/{id}/deactivate", what: "system key", id: kS, want: stateS, check: checkKeyStatus("inactive")},
		{method: "POST", pattern: "/v1/keys/{id}/deactivate", what: "B's key", id: kB, want: stateB, check: checkKeyStatus("inactive")},
		{method: "POST", pattern: "/v1/keys/{id}/deactivate", what: "inactive key of the developer", id: inactiveKeyOf(ownerDev),
			want: byCaller{anon: e401, admin: e409, adminDev: e409, dev: e409, plain: e404, roKey: e403, adminKey: e409, other: e404}},
		{method: "POST", pattern: "/v1/keys/{id}/deactivate", what: "revoked key of the developer", id: revokedKeyOf(ownerDev),
			want: byCaller{anon: e401, admin: e409, adminDev: e409, dev: e409, plain: e404, roKey: e403, adminKey: e409, other: e404}},

		{method: "POST", pattern: "/v1/keys/{id}/reactivate", what: "developer's key", id: inactiveKeyOf(ownerDev), want: stateD, check: checkKeyStatus("active")},
		{method: "POST", pattern: "/v1/keys/{id}/reactivate", what: "plain user's key", id: inactiveKeyOf(ownerPlain), want: stateP, check: checkKeyStatus("active")},
		{method: "POST", pattern: "/v1/keys/{id}/reactivate", what: "system key", id: inactiveKeyOf(ownerSystem), want: stateS, check: checkKeyStatus("active")},
		{method: "POST", pattern: "/v1/keys/{id}/reactivate", what: "B's key", id: inactiveKeyOf(ownerOther), want: stateB, check: checkKeyStatus("active")},
		{method: "POST", pattern: "/v1/keys/{id}/reactivate", what: "active key of the developer", id: kD,
			want: byCaller{anon: e401, admin: e409, adminDev: e409, dev: e409, plain: e404, roKey: e403, adminKey: e409, other: e404}},
		{method: "POST", pattern: "/v1/keys/{id}/reactivate", what: "revoked key of the developer", id: revokedKeyOf(ownerDev),
			want: byCaller{anon: e401, admin: e409, adminDev: e409, dev: e409, plain: e404, roKey: e403, adminKey: e409, other: e404}},

		{method: "POST", pattern: "/v1/keys/{id}/revoke", what: "developer's key", id: kD, body: reason, want: stateD, check: checkRevoked},
		{method: "POST", pattern: "/v1/keys/{id}/revoke", what: "plain user's key", id: kP, body: reason, want: stateP, check: checkRevoked},
		{method: "POST", pattern: "/v1/keys/{id}/revoke", what: "system key", id: kS, body: reason, want: stateS, check: checkRevoked},
		{method: "POST", pattern: "/v1/keys/{id}/revoke", what: "B's key", id: kB, body: reason, want: stateB, check: checkRevoked},
		{method: "POST", pattern: "/v1/keys/{id}/revoke", what: "inactive key of the developer", id: inactiveKeyOf(ownerDev),
			body: reason, want: stateD, check: checkRevoked},
		{method: "POST", pattern: "/v1/keys/{id}/revoke", what: "revoked key of the developer", id: revokedKeyOf(ownerDev), body: reason,
			want: byCaller{anon: e401, admin: e409nr, adminDev: e409nr, dev: e409nr, plain: e404, roKey: e403, adminKey: e409nr, other: e404}},

		{method: "POST", pattern: "/v1/keys/{id}/rotate", what: "developer's key", id: kD, check: checkRotated(ownerDev),
			want: byCaller{anon: e401, admin: e403, adminDev: e403, dev: s201, plain: e404, roKey: e403, adminKey: s201, other: e404}},
		{method: "POST", pattern: "/v1/keys/{id}/rotate", what: "plain user's key", id: kP, check: checkRotated(ownerPlain),
			want: byCaller{anon: e401, admin: e403, adminDev: e403, dev: e404, plain: e403dev, roKey: e403, adminKey: e404, other: e404}},
		{method: "POST", pattern: "/v1/keys/{id}/rotate", what: "admin+developer's key", id: kAD, check: checkRotated(ownerAdminDev),
			want: byCaller{anon: e401, admin: e403, adminDev: s201, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: e404}},
		{method: "POST", pattern: "/v1/keys/{id}/rotate", what: "system key", id: kS, check: checkRotated(ownerSystem),
			want: byCaller{anon: e401, admin: s201, adminDev: s201, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: e404}},
		{method: "POST", pattern: "/v1/keys/{id}/rotate", what: "B's key", id: kB, check: checkRotated(ownerOther),
			want: byCaller{anon: e401, admin: e404, adminDev: e404, dev: e404, plain: e404, roKey: e403, adminKey: e404, other: s201}},
		{method: "POST", pattern: "/v1/keys/{id}/rotate", what: "inactive key of the developer", id: inactiveKeyOf(ownerDev),
			want: byCaller{anon: e401, admin: e403, adminDev: e403, dev: e409, plain: e404, roKey: e403, adminKey: e409, other: e404}},

		// Settings and events.
		{method: "GET", pattern: "/v1/settings", want: authed200, check: checkSettings(14)},
		{method: "PATCH", pattern: "/v1/settings", body: jsonBody(map[string]int{"expiry_notice_days": 7}),
			want: adminOnlyWrite(s200), check: checkSettings(7)},
		{method: "GET", pattern: "/v1/events", want: authed200, check: checkEvents},

		// Operations.
		{method: "GET", pattern: "/v1/openapi.json", want: everyone(s200)},
		{method: "GET", pattern: "/healthz", want: everyone(s200)},
		{method: "GET", pattern: "/readyz", want: everyone(s200)},
		{method: "GET", pattern: "/metrics", want: everyone(s200)},
	}
	// Forward authentication takes keys only, whatever the method.
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"} {
		rows = append(rows, row{method: m, pattern: "/v1/auth", want: forward, check: checkForwardAuth})
	}
	return rows
}

// TestAuthorizationMatrix sends every route of the server's route table as
// every caller and compares each answer with the contract's "who may do
// what", including what a refused call leaves behind (nothing) and what a
// list shows (only what the caller may see).
func TestAuthorizationMatrix(t *testing.T) {
	rows := matrix()

	// The table must cover the route table exactly.
	probe := newEnv(t, envOptions{})
	routes := map[string]bool{}
	for _, rt := range probe.srv.Routes() {
		routes[rt.Method+" "+rt.Pattern] = true
	}
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.route()] = true
		if !routes[r.route()] {
			t.Errorf("the matrix has a row for %s, which is not in the route table", r.route())
		}
	}
	for rt := range routes {
		if !covered[rt] {
			t.Errorf("route %s has no row in the authorization matrix", rt)
		}
	}

	for _, r := range rows {
		t.Run(r.name(), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, envOptions{network: true})
			for i, name := range callerNames {
				w := r.want.of(name)
				if w.status == 0 {
					t.Errorf("%s: no entry for caller %s", r.name(), name)
					continue
				}
				if r.fresh && i > 0 {
					f.renew(t)
				}
				runCell(t, f, r, f.caller(name), w)
			}
		})
	}
}

// runCell makes one call and checks it.
func runCell(t *testing.T, f *fixture, r row, c caller, w want) {
	t.Helper()
	id := ""
	if r.id != nil {
		id = r.id(t, f, c)
	}
	path := strings.Replace(r.pattern, "{id}", id, 1)
	if r.query != nil {
		path += r.query(f)
	}
	q := req{method: r.method, path: path, bearer: c.bearer, apiKey: c.apiKey}
	if r.body != nil {
		q.body = r.body(f, c, id)
	}
	var before string
	if w.status >= 300 {
		before = f.snapshotAll(t)
	}
	got := f.send(t, q)
	label := fmt.Sprintf("%s as %s (id %s)", r.name(), c.name, id)

	if got.Status != w.status {
		t.Errorf("%s: %s, want %s", label, got, w)
		return
	}
	for _, secret := range []string{f.bootA, f.bootB, f.rootA, f.rootB, f.devRO.Secret, f.devAdmin.Secret, f.sysKey.Secret, f.otherKey.Secret} {
		if bytes.Contains(got.Body, []byte(secret)) || strings.Contains(fmt.Sprint(got.Header), secret) {
			t.Errorf("%s: the answer shows a secret", label)
		}
	}
	ok := got.Status < 300
	switch {
	case !ok && r.pattern == "/v1/auth":
		if code := got.Header.Get("X-Keyward-Code"); code != w.code || len(got.Body) != 0 {
			t.Errorf("%s: X-Keyward-Code %q and body %q, want %q and no body", label, code, got.Body, w.code)
		}
		if got.Status == http.StatusUnauthorized && !strings.HasPrefix(got.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without WWW-Authenticate: Bearer", label)
		}
	case !ok:
		checkProblem(t, got, w.status, w.code)
	case r.check != nil:
		r.check(t, f, c, id, got)
	}
	// A refusal changes nothing.
	if !ok {
		if after := f.snapshotAll(t); after != before {
			t.Errorf("%s: the call changed the store:\nbefore %s\nafter  %s", label, before, after)
		}
	}
}

// TestRightsTakeEffectAtOnce: rights are read at every request, so a role
// change, a license change, a revocation, the tenant switch and a user
// deletion bind sessions and keys already in use.
func TestRightsTakeEffectAtOnce(t *testing.T) {
	f := newFixture(t, envOptions{network: true})
	admin := f.admin.Token
	newKey := req{method: "POST", path: "/v1/keys", body: map[string]string{"name": "again"}}
	as := func(q req, bearer string) req { q.bearer = bearer; return q }
	me := func(cred string) int { return f.send(t, req{method: "GET", path: "/v1/me", bearer: cred}).Status }

	if r := f.send(t, as(newKey, f.dev.Token)); r.Status != http.StatusCreated {
		t.Fatalf("developer creates a key: %s", r)
	}
	// The developer loses its license, then its role.
	if r := f.send(t, req{method: "PATCH", path: "/v1/users/" + f.dev.ID, bearer: admin, body: map[string]bool{"licensed": false}}); r.Status != http.StatusOK {
		t.Fatalf("unlicense: %s", r)
	}
	checkProblem(t, f.send(t, as(newKey, f.dev.Token)), http.StatusForbidden, keyward.ELicenseRequired)
	if r := f.send(t, req{method: "PATCH", path: "/v1/users/" + f.dev.ID, bearer: admin,
		body: map[string]any{"roles": []string{}, "licensed": true}}); r.Status != http.StatusOK {
		t.Fatalf("drop the developer role: %s", r)
	}
	checkProblem(t, f.send(t, as(newKey, f.dev.Token)), http.StatusForbidden, keyward.EDeveloperRequired)
	newKey.apiKey = f.devAdmin.Secret
	checkProblem(t, f.send(t, newKey), http.StatusForbidden, keyward.EDeveloperRequired)
	newKey.apiKey = ""
	// Still the owner: it may revoke its own key, which stops working at once.
	if r := f.send(t, req{method: "POST", path: "/v1/keys/" + f.devAdmin.ID + "/revoke", bearer: f.dev.Token}); r.Status != http.StatusOK {
		t.Fatalf("revoke own key without the developer role: %s", r)
	}
	if got := me(f.devAdmin.Secret); got != http.StatusUnauthorized {
		t.Errorf("a revoked key still authenticates: %d", got)
	}
	// The tenant switch: keys stop authenticating, sessions go on, no key can be made.
	if r := f.send(t, req{method: "PATCH", path: "/v1/settings", bearer: admin, body: map[string]bool{"api_keys_enabled": false}}); r.Status != http.StatusOK {
		t.Fatalf("switch keys off: %s", r)
	}
	if got := me(f.devRO.Secret); got != http.StatusUnauthorized {
		t.Errorf("a key of a tenant with keys off authenticates: %d", got)
	}
	if got := me(f.otherKey.Secret); got != http.StatusOK {
		t.Errorf("tenant B's key stops working when tenant A switches keys off: %d", got)
	}
	checkProblem(t, f.send(t, as(newKey, f.adminDev.Token)), http.StatusForbidden, keyward.EKeysDisabled)
	if r := f.send(t, req{method: "PATCH", path: "/v1/settings", bearer: admin, body: map[string]bool{"api_keys_enabled": true}}); r.Status != http.StatusOK {
		t.Fatalf("switch keys on: %s", r)
	}
	if got := me(f.devRO.Secret); got != http.StatusOK {
		t.Errorf("a key does not come back with the switch: %d", got)
	}
	// Deleting the user ends its session and its keys.
	if r := f.send(t, req{method: "DELETE", path: "/v1/users/" + f.dev.ID, bearer: admin}); r.Status != http.StatusNoContent {
		t.Fatalf("delete the developer: %s", r)
	}
	for _, cred := range []string{f.dev.Token, f.devRO.Secret} {
		if got := me(cred); got != http.StatusUnauthorized {
			t.Errorf("a credential of a deleted user still authenticates: %d", got)
		}
	}
	checkProblem(t, f.send(t, req{method: "GET", path: "/v1/keys/" + f.devRO.ID, bearer: admin}), http.StatusNotFound, keyward.ENotFound)
	if r := f.send(t, req{method: "POST", path: "/v1/keys/verify", body: map[string]string{"key": f.devRO.Secret}}); r.object(t)["code"] != keyward.CodeNotFound {
		t.Errorf("verify a key of a deleted user: %s", r)
	}
}

// TestKeyLimitsAndExpiry: the refusals of POST /v1/keys that depend on the
// tenant's settings, and rotation at the maximum.
func TestKeyLimitsAndExpiry(t *testing.T) {
	f := newFixture(t, envOptions{network: true})
	admin := f.admin.Token
	patch := func(v map[string]any) {
		t.Helper()
		if r := f.send(t, req{method: "PATCH", path: "/v1/settings", bearer: admin, body: v}); r.Status != http.StatusOK {
			t.Fatalf("settings %v: %s", v, r)
		}
	}
	create := func(body map[string]any) reply {
		return f.send(t, req{method: "POST", path: "/v1/keys", bearer: f.dev.Token, body: body})
	}

	// The developer holds two keys; a maximum of two refuses a third, but a
	// rotation still goes through.
	patch(map[string]any{"max_keys_per_user": 2})
	checkProblem(t, create(map[string]any{"name": "third"}), http.StatusConflict, keyward.EKeyLimitReached)
	if r := f.send(t, req{method: "POST", path: "/v1/keys/" + f.devRO.ID + "/rotate", bearer: f.dev.Token}); r.Status != http.StatusCreated {
		t.Errorf("rotation at the maximum: %s", r)
	}
	patch(map[string]any{"max_keys_per_user": 1000, "max_expiration_days": 30})

	now := f.clock.Now()
	checkProblem(t, create(map[string]any{"name": "long", "expires_at": now.AddDate(0, 0, 31).Format(time.RFC3339)}),
		http.StatusBadRequest, keyward.EExpirationTooLong)
	r := create(map[string]any{"name": "default expiry"})
	var k struct {
		ExpiresAt *time.Time `json:"expires_at"`
	}
	r.decode(t, &k)
	if r.Status != http.StatusCreated || k.ExpiresAt == nil || !k.ExpiresAt.Equal(now.AddDate(0, 0, 30)) {
		t.Errorf("without expires_at under a 30-day maximum: %s, want expires_at %s", r, now.AddDate(0, 0, 30))
	}
	r = create(map[string]any{"name": "short", "expires_at": now.Add(time.Hour).Format(time.RFC3339)})
	r.decode(t, &k)
	if r.Status != http.StatusCreated || k.ExpiresAt == nil || !k.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("a shorter expiry: %s", r)
	}
	// Clearing the maximum: keys never expire by default again.
	patch(map[string]any{"max_expiration_days": nil})
	r = create(map[string]any{"name": "forever"})
	r.decode(t, &k)
	if r.Status != http.StatusCreated || k.ExpiresAt != nil {
		t.Errorf("without a maximum: %s, want expires_at null", r)
	}
}

// TestCredentialHeaders: a key or token is read from Authorization: Bearer
// or X-API-Key, never from elsewhere.
func TestCredentialHeaders(t *testing.T) {
	f := newFixture(t, envOptions{network: true})
	for _, c := range []struct {
		name   string
		header http.Header
		status int
	}{
		{"bearer key", http.Header{"Authorization": {"Bearer " + f.devRO.Secret}}, http.StatusOK},
		{"bearer session", http.Header{"Authorization": {"Bearer " + f.dev.Token}}, http.StatusOK},
		{"lower-case scheme", http.Header{"Authorization": {"bearer " + f.devRO.Secret}}, http.StatusOK},
		{"X-API-Key", http.Header{"X-Api-Key": {f.devRO.Secret}}, http.StatusOK},
		{"X-API-Key next to Basic auth", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}, "X-Api-Key": {f.devRO.Secret}}, http.StatusOK},
		{"Basic auth only", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, http.StatusUnauthorized},
		{"secret as Basic", http.Header{"Authorization": {"Basic " + f.devRO.Secret}}, http.StatusUnauthorized},
		{"cookie", http.Header{"Cookie": {"keyward_session=" + f.dev.Token + "; api_key=" + f.devRO.Secret}}, http.StatusUnauthorized},
		{"revoked bearer, valid X-API-Key", http.Header{"Authorization": {"Bearer " + f.revokedSecret(t)}, "X-Api-Key": {f.devRO.Secret}},
			http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := f.send(t, req{method: "GET", path: "/v1/me", header: c.header})
			if r.Status != c.status {
				t.Fatalf("%s, want %d", r, c.status)
			}
			if c.status != http.StatusOK {
				checkProblem(t, r, c.status, keyward.EUnauthenticated)
			}
		})
	}
}

// revokedSecret issues a key of the developer and revokes it.
func (f *fixture) revokedSecret(tb testing.TB) string {
	tb.Helper()
	p := f.principal(tb, f.dev.Token)
	k, secret := f.mustKey(tb, p, keyward.KeyInput{Name: "revoked"})
	if _, err := f.svc.RevokeKey(context.Background(), p, k.ID, nil); err != nil {
		tb.Fatal(err)
	}
	return secret
}
