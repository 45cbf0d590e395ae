package main

// End-to-end tests: the seeds' flows over real HTTP against Main on a real
// SQLite file, every response checked against the OpenAPI document and
// recorded for the secret scan at the end.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keyward/keyward/internal/testclock"
	"github.com/keyward/keyward/postgres/pgtest"
)

const devPassword = "developer password 1"

// TestFlows runs every seed flow in its own tenant on one server, then scans
// everything that server said for secrets.
func TestFlows(t *testing.T) { testFlows(t, serverOpts{}) }

// TestFlowsPostgres runs the very same flows on PostgreSQL.
func TestFlowsPostgres(t *testing.T) { testFlows(t, serverOpts{DB: pgtest.NewDatabase(t)}) }

func testFlows(t *testing.T, o serverOpts) {
	rec := &recorder{}
	dir := t.TempDir()
	srv := startServer(t, dir, rec, o)
	flow := func(name string, f func(*testing.T, *server, *tenant)) {
		t.Run(name, func(t *testing.T) { f(t, srv, srv.newTenant(t, strings.ToLower(name))) })
	}
	flow("KeyLifecycle", testKeyLifecycle)
	flow("AdminRevocations", testAdminRevocations)
	flow("TenantSwitch", testTenantSwitch)
	flow("KeyMaxima", testKeyMaxima)
	flow("MaxExpiration", testMaxExpiration)
	flow("DeleteUser", testDeleteUser)
	flow("Rotation", testRotation)
	flow("Listing", testListing)
	flow("Tenancy", testTenancy)
	flow("Credentials", testCredentials)
	t.Run("Operations", func(t *testing.T) { testOperations(t, srv) })

	t.Run("SecretScan", func(t *testing.T) {
		events := collectEvents(t, srv.c, srv.tenants)
		srv.close(t)
		dbDir := srv.dir
		if o.DB != "" {
			dbDir = "" // PostgreSQL's files are not ours to read; the events and responses are scanned
		}
		assertNoLeaks(t, rec, map[string]string{"the server log": srv.log.String()}, events, dbDir)
	})
}

// people are the users most flows start with.
type people struct {
	dev, plain, sys    apiUser
	devTok, plainTok   string
	devEmail, plainEml string
}

// addPeople has the tenant admin create a developer, a plain user and a
// system user, and logs the two people in.
func addPeople(t *testing.T, c *client, tn *tenant) people {
	t.Helper()
	var p people
	p.devEmail, p.plainEml = tn.email("dev"), tn.email("plain")
	p.dev = c.createUser(t, tn.AdminKey, map[string]any{"email": p.devEmail, "name": "Dev " + tn.Name, "kind": "user",
		"roles": []string{"developer"}, "licensed": true, "password": devPassword})
	p.plain = c.createUser(t, tn.AdminKey, map[string]any{"email": p.plainEml, "name": "Plain " + tn.Name, "kind": "user",
		"roles": []string{}, "password": devPassword})
	p.sys = c.createUser(t, tn.AdminKey, map[string]any{"email": tn.email("svc"), "name": "Service " + tn.Name, "kind": "system",
		"roles": []string{}})
	p.devTok = c.login(t, p.devEmail, devPassword).Token
	p.plainTok = c.login(t, p.plainEml, devPassword).Token
	return p
}

func testKeyLifecycle(t *testing.T, srv *server, tn *tenant) {
	c := srv.c
	p := addPeople(t, c, tn)
	for _, u := range []apiUser{p.dev, p.plain, p.sys} {
		if !strings.HasPrefix(u.ID, "usr_") || u.TenantID != tn.ID || !u.Licensed {
			t.Errorf("created user %+v: want usr_ id, tenant %s, licensed", u, tn.ID)
		}
	}
	if diff := cmp.Diff([]string{"developer"}, p.dev.Roles); diff != "" || p.dev.Kind != "user" {
		t.Errorf("developer: kind %s, roles (-want +got):\n%s", p.dev.Kind, diff)
	}
	if p.sys.Kind != "system" || len(p.plain.Roles) != 0 {
		t.Errorf("system user kind %q, plain user roles %v", p.sys.Kind, p.plain.Roles)
	}
	// A system user never logs in.
	c.fail(t, 401, "unauthenticated", "POST", "/v1/sessions", "", map[string]string{"email": tn.email("svc"), "password": devPassword})

	// The admin turns settings; everyone reads them, nobody else changes them.
	set := c.settings(t, tn.AdminKey, map[string]any{"max_keys_per_user": 4, "expiry_notice_days": 7})
	want := apiSettings{APIKeysEnabled: true, MaxKeysPerUser: 4, MaxKeysPerServiceUser: 10, ExpiryNoticeDays: 7, KeyPrefix: "kw"}
	if diff := cmp.Diff(want, set); diff != "" {
		t.Errorf("PATCH /v1/settings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, c.settings(t, p.plainTok, nil)); diff != "" {
		t.Errorf("GET /v1/settings as a plain user (-want +got):\n%s", diff)
	}
	c.fail(t, 403, "permission_denied", "PATCH", "/v1/settings", p.devTok, map[string]any{"max_keys_per_user": 9})
	c.fail(t, 400, "invalid_argument", "PATCH", "/v1/settings", tn.Session, map[string]any{"max_keys_per_user": 0})

	// Only a developer creates keys.
	c.fail(t, 403, "developer_role_required", "POST", "/v1/keys", p.plainTok, map[string]any{"name": "nope"})
	c.fail(t, 403, "permission_denied", "POST", "/v1/keys", p.devTok, map[string]any{"name": "nope", "owner_id": p.sys.ID})

	// The developer creates a key and sees its secret once.
	before := time.Now().Truncate(time.Microsecond)
	k := c.createKey(t, p.devTok, map[string]any{"name": "billing", "description": "invoices job", "role": "admin",
		"scopes": []string{"invoices:read", "invoices:write"}, "meta": map[string]any{"team": "payments"}})
	if !strings.HasPrefix(k.Secret, "kw_") || !strings.HasPrefix(k.ID, "key_") || !strings.HasPrefix(k.Start, "kw_") || len(k.Start) >= len(k.Secret) {
		t.Errorf("created key: id %q, start %q, secret %q", k.ID, k.Start, k.Secret)
	}
	if k.Status != "active" || k.OwnerID != p.dev.ID || k.OwnerEmail != p.devEmail || k.OwnerName != p.dev.Name ||
		k.Type != "user" || k.Role != "admin" || k.TenantID != tn.ID || k.ExpiresAt != nil || k.RevokedAt != nil ||
		k.LastUsedAt != nil || k.CreatedAt.Before(before) || !k.UpdatedAt.Equal(k.CreatedAt) {
		t.Errorf("created key: %+v", k)
	}
	if diff := cmp.Diff([]string{"invoices:read", "invoices:write"}, k.Scopes); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"team": "payments"}, k.Meta); diff != "" {
		t.Errorf("meta (-want +got):\n%s", diff)
	}
	got := c.getKey(t, p.devTok, k.ID)
	wantKey := k
	wantKey.Secret = ""
	if diff := cmp.Diff(wantKey, got); diff != "" {
		t.Errorf("GET the new key (-want +got):\n%s", diff)
	}
	if got.LastUsedAt != nil {
		t.Errorf("last_used_at before any use: %v, want null (Never)", got.LastUsedAt)
	}
	// A plain user cannot see it: not found, not forbidden.
	c.fail(t, 404, "not_found", "GET", "/v1/keys/"+k.ID, p.plainTok, nil)
	if l := c.listKeys(t, p.devTok, nil); l.Total != 1 || len(l.Keys) != 1 || l.Keys[0].ID != k.ID {
		t.Errorf("the developer lists %v (total %d), want only %s", ids(l.Keys), l.Total, k.ID)
	}

	// Verification.
	usedAt := time.Now().Truncate(time.Microsecond)
	v := c.verify(t, k.Secret)
	if !v.Valid || v.Code != "VALID" || v.Key == nil || v.Key.ID != k.ID || v.Key.TenantID != tn.ID ||
		v.Key.OwnerID != p.dev.ID || v.Key.Role != "admin" || v.Key.Type != "user" || v.Key.Name != "billing" ||
		!slices.Equal(v.Key.Scopes, k.Scopes) || v.Key.Meta["team"] != "payments" || v.Key.ExpiresAt != nil {
		t.Errorf("verify: %+v %+v", v, v.Key)
	}
	var fv verifyAnswer
	c.must(t, 200, "POST", "/v1/keys/verify", "", map[string]any{"key": k.Secret, "require_role": "admin",
		"require_scopes": []string{"invoices:read"}}, &fv)
	if fv.Code != "VALID" {
		t.Errorf("verify with met requirements: %s", fv.Code)
	}
	c.must(t, 200, "POST", "/v1/keys/verify", "", map[string]any{"key": k.Secret, "require_scopes": []string{"invoices:delete"}}, &fv)
	if fv.Valid || fv.Code != "FORBIDDEN" {
		t.Errorf("verify with a missing scope: %+v, want FORBIDDEN", fv)
	}
	// The last character changed (to another one: "x" when it was not
	// already "x", which it is one time in 62).
	tampered := k.Secret[:len(k.Secret)-1] + "x"
	if tampered == k.Secret {
		tampered = k.Secret[:len(k.Secret)-1] + "y"
	}
	c.wantVerify(t, tampered, "NOT_FOUND", "")
	lastUsed := c.waitLastUsed(t, p.devTok, k.ID)
	if lastUsed.Before(usedAt) || lastUsed.After(time.Now()) {
		t.Errorf("last_used_at %s, want between %s and now", lastUsed, usedAt)
	}

	// Rename: updated_at moves.
	var renamed apiKey
	c.must(t, 200, "PATCH", "/v1/keys/"+k.ID, p.devTok, map[string]any{"name": "billing-v2", "description": "renamed"}, &renamed)
	if renamed.Name != "billing-v2" || renamed.Description != "renamed" || !renamed.UpdatedAt.After(k.UpdatedAt) ||
		!renamed.CreatedAt.Equal(k.CreatedAt) || renamed.Secret != "" {
		t.Errorf("renamed key: %+v (was updated %s)", renamed, k.UpdatedAt)
	}
	if g := c.getKey(t, p.devTok, k.ID); g.Name != "billing-v2" || !g.UpdatedAt.Equal(renamed.UpdatedAt) {
		t.Errorf("GET after rename: name %q updated %s", g.Name, g.UpdatedAt)
	}
	c.fail(t, 400, "invalid_argument", "PATCH", "/v1/keys/"+k.ID, p.devTok, map[string]any{"name": ""})
	c.fail(t, 400, "invalid_argument", "PATCH", "/v1/keys/"+k.ID, p.devTok, `{"name": `)

	// Deactivate, reactivate.
	d := c.keyAction(t, p.devTok, k.ID, "deactivate", nil)
	if d.Status != "inactive" || d.UpdatedAt.Before(renamed.UpdatedAt) {
		t.Errorf("deactivated key: status %s", d.Status)
	}
	c.wantVerify(t, k.Secret, "INACTIVE", k.ID)
	c.fail(t, 401, "unauthenticated", "GET", "/v1/me", k.Secret, nil)
	c.fail(t, 409, "conflict", "POST", "/v1/keys/"+k.ID+"/deactivate", p.devTok, nil)
	if r := c.keyAction(t, p.devTok, k.ID, "reactivate", nil); r.Status != "active" {
		t.Errorf("reactivated key: status %s", r.Status)
	}
	c.wantVerify(t, k.Secret, "VALID", k.ID)
	c.fail(t, 409, "conflict", "POST", "/v1/keys/"+k.ID+"/reactivate", p.devTok, nil)

	// Revoke: for good.
	revokedAfter := time.Now().Truncate(time.Microsecond)
	rv := c.keyAction(t, p.devTok, k.ID, "revoke", map[string]any{"reason": "leaked in a log"})
	if rv.Status != "revoked" || rv.RevokedAt == nil || rv.RevokedAt.Before(revokedAfter) || rv.RevokedBy == nil ||
		*rv.RevokedBy != p.dev.ID || rv.RevokeReason == nil || *rv.RevokeReason != "leaked in a log" {
		t.Errorf("revoked key: %+v", rv)
	}
	c.wantVerify(t, k.Secret, "REVOKED", k.ID)
	pr := c.fail(t, 409, "not_revocable", "POST", "/v1/keys/"+k.ID+"/revoke", p.devTok, nil)
	if !strings.HasPrefix(pr.Detail, "Unable to Revoke API Key") {
		t.Errorf("revoking a revoked key: detail %q, want it to start with \"Unable to Revoke API Key\"", pr.Detail)
	}
	c.fail(t, 409, "conflict", "POST", "/v1/keys/"+k.ID+"/deactivate", p.devTok, nil)
	c.fail(t, 409, "conflict", "POST", "/v1/keys/"+k.ID+"/reactivate", p.devTok, nil)
	c.fail(t, 409, "conflict", "POST", "/v1/keys/"+k.ID+"/rotate", p.devTok, nil)
	if g := c.getKey(t, p.devTok, k.ID); g.Status != "revoked" {
		t.Errorf("GET after a refused change: status %s", g.Status)
	}

	// Events: the key's own trail, newest first.
	evs := c.events(t, p.devTok, url.Values{"key_id": {k.ID}})
	if diff := cmp.Diff([]string{"key.revoked", "key.reactivated", "key.deactivated", "key.updated", "key.created"}, actions(evs)); diff != "" {
		t.Errorf("events of the key (-want +got):\n%s", diff)
	}
	for _, e := range evs {
		if e.Actor.Type != "user" || e.Actor.ID != p.dev.ID || e.Target.Type != "key" || e.Target.ID != k.ID ||
			e.TenantID != tn.ID || !strings.HasPrefix(e.ID, "evt_") || e.UserAgent != "keyward-e2e" || e.IP != "127.0.0.1" {
			t.Errorf("event %s: %+v", e.Action, e)
		}
	}
	// The admin's view of the whole flow.
	all := c.events(t, tn.Session, nil)
	for action, n := range map[string]int{"user.created": 4, "settings.updated": 1, "session.created": 3, "key.created": 2,
		"key.updated": 1, "key.deactivated": 1, "key.reactivated": 1, "key.revoked": 1} {
		if got := count(actions(all), action); got != n {
			t.Errorf("admin sees %d %s events, want %d", got, action, n)
		}
	}
	settingsEv := filterAction(all, "settings.updated")
	if len(settingsEv) == 1 && (settingsEv[0].Actor.Type != "key" || settingsEv[0].Actor.ID != tn.AdminKeyID || settingsEv[0].Target.Type != "settings") {
		t.Errorf("settings.updated event: %+v, want the admin's key as actor", settingsEv[0])
	}
	// The action filter.
	for _, action := range []string{"user.created", "key.revoked", "session.created"} {
		got := c.events(t, tn.Session, url.Values{"action": {action}})
		if len(got) != count(actions(all), action) || count(actions(got), action) != len(got) {
			t.Errorf("action=%s lists %v", action, actions(got))
		}
	}
	// The actor and time filters.
	for _, e := range c.events(t, tn.Session, url.Values{"actor_id": {p.dev.ID}}) {
		if e.Actor.ID != p.dev.ID {
			t.Errorf("actor_id=%s lists an event by %s", p.dev.ID, e.Actor.ID)
		}
	}
	if byDev := c.events(t, tn.Session, url.Values{"actor_id": {p.dev.ID}}); len(byDev) != 6 {
		t.Errorf("actor_id lists %v, want the developer's login and 5 key changes", actions(byDev))
	}
	since := evs[2].Time // key.deactivated
	window := c.events(t, tn.Session, url.Values{"key_id": {k.ID}, "since": {since.Format(time.RFC3339Nano)}})
	if !slices.Equal(actions(window), []string{"key.revoked", "key.reactivated", "key.deactivated"}) {
		t.Errorf("since=%s lists %v", since, actions(window))
	}
	window = c.events(t, tn.Session, url.Values{"key_id": {k.ID}, "until": {since.Format(time.RFC3339Nano)}})
	if !slices.Equal(actions(window), []string{"key.updated", "key.created"}) {
		t.Errorf("until=%s lists %v", since, actions(window))
	}
	// A non-admin sees only events about itself and its keys.
	devEvents := c.events(t, p.devTok, nil)
	plainEvents := c.events(t, p.plainTok, nil)
	mine := func(who string, keys ...string) func(apiEvent) bool {
		return func(e apiEvent) bool {
			return e.Actor.ID == who || e.Target.ID == who || slices.Contains(keys, e.Target.ID) || slices.Contains(keys, e.Actor.ID)
		}
	}
	checkOnly(t, "the developer", devEvents, mine(p.dev.ID, k.ID))
	checkOnly(t, "the plain user", plainEvents, mine(p.plain.ID))
	if got, want := sorted(actions(plainEvents)...), sorted("user.created", "session.created"); !slices.Equal(got, want) {
		t.Errorf("the plain user sees %v, want %v", got, want)
	}
	for _, action := range []string{"user.created", "session.created", "key.created", "key.revoked"} {
		if count(actions(devEvents), action) != 1 {
			t.Errorf("the developer sees %v, want one %s", actions(devEvents), action)
		}
	}
	c.fail(t, 403, "permission_denied", "GET", "/v1/users", p.devTok, nil)
}

func actions(evs []apiEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Action
	}
	return out
}

func count(list []string, v string) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}

func filterAction(evs []apiEvent, action string) []apiEvent {
	var out []apiEvent
	for _, e := range evs {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func checkOnly(t *testing.T, who string, evs []apiEvent, ok func(apiEvent) bool) {
	t.Helper()
	if len(evs) == 0 {
		t.Errorf("%s sees no events", who)
	}
	for _, e := range evs {
		if !ok(e) {
			t.Errorf("%s sees an event not about itself: %s by %s %s on %s %s", who, e.Action, e.Actor.Type, e.Actor.ID, e.Target.Type, e.Target.ID)
		}
	}
}

// bulkAnswer is the answer of POST /v1/keys/revoke.
type bulkAnswer struct {
	Revoked int `json:"revoked"`
	Failed  []struct {
		ID      string `json:"id"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"failed"`
}

func testAdminRevocations(t *testing.T, srv *server, tn *tenant) {
	c := srv.c
	p := addPeople(t, c, tn)
	d1 := c.createKey(t, p.devTok, map[string]any{"name": "d1"})
	d2 := c.createKey(t, p.devTok, map[string]any{"name": "d2"})
	d3 := c.createKey(t, p.devTok, map[string]any{"name": "d3"})
	s1 := c.createKey(t, tn.AdminKey, map[string]any{"name": "s1", "owner_id": p.sys.ID, "role": "admin"})
	s2 := c.createKey(t, tn.AdminKey, map[string]any{"name": "s2", "owner_id": p.sys.ID})
	a1 := c.createKey(t, tn.AdminKey, map[string]any{"name": "a1"})
	for _, k := range []apiKey{s1, s2} {
		if k.Type != "system" || k.OwnerID != p.sys.ID {
			t.Errorf("system key %s: type %s owner %s", k.Name, k.Type, k.OwnerID)
		}
	}
	if a1.OwnerID != tn.AdminID || a1.Type != "user" {
		t.Errorf("admin's own key: owner %s type %s", a1.OwnerID, a1.Type)
	}

	// Bulk revocation by type or all is for admins; by ids, others revoke only their own.
	c.fail(t, 403, "permission_denied", "POST", "/v1/keys/revoke", p.devTok, map[string]any{"type": "system"})
	c.fail(t, 403, "permission_denied", "POST", "/v1/keys/revoke", p.devTok, map[string]any{"all": true})
	c.fail(t, 400, "invalid_argument", "POST", "/v1/keys/revoke", tn.Session, map[string]any{"all": true, "type": "user"})
	c.fail(t, 400, "invalid_argument", "POST", "/v1/keys/revoke", tn.Session, map[string]any{})
	var br bulkAnswer
	c.must(t, 200, "POST", "/v1/keys/revoke", p.devTok, map[string]any{"ids": []string{s1.ID}}, &br)
	if br.Revoked != 0 || len(br.Failed) != 1 || br.Failed[0].ID != s1.ID || br.Failed[0].Code != "not_found" {
		t.Errorf("a developer revoking a system key by id: %+v, want it failed not_found", br)
	}
	c.wantVerify(t, s1.Secret, "VALID", s1.ID)

	// One key.
	r1 := c.keyAction(t, tn.AdminKey, d1.ID, "revoke", map[string]any{"reason": "offboarding"})
	if r1.Status != "revoked" || r1.RevokedBy == nil || *r1.RevokedBy != tn.AdminID {
		t.Errorf("admin revoked d1: %+v", r1)
	}
	c.wantVerify(t, d1.Secret, "REVOKED", d1.ID)

	// A selection, with an unknown id and an already revoked key.
	unknown := "key_0000000000000000000000"
	br = bulkAnswer{}
	c.must(t, 200, "POST", "/v1/keys/revoke", tn.AdminKey, map[string]any{"ids": []string{d2.ID, unknown, d1.ID}, "reason": "cleanup"}, &br)
	if br.Revoked != 1 || len(br.Failed) != 2 {
		t.Fatalf("revoke by ids: %+v, want 1 revoked and 2 failed", br)
	}
	failed := map[string]string{}
	for _, f := range br.Failed {
		failed[f.ID] = f.Code
		if f.Code == "not_revocable" && !strings.HasPrefix(f.Message, "Unable to Revoke API Key") {
			t.Errorf("failed entry message %q, want \"Unable to Revoke API Key\"", f.Message)
		}
	}
	if diff := cmp.Diff(map[string]string{unknown: "not_found", d1.ID: "not_revocable"}, failed); diff != "" {
		t.Errorf("failed entries (-want +got):\n%s", diff)
	}
	c.wantVerify(t, d2.Secret, "REVOKED", d2.ID)
	if g := c.getKey(t, tn.Session, d2.ID); g.RevokeReason == nil || *g.RevokeReason != "cleanup" {
		t.Errorf("d2 revoke_reason %v", g.RevokeReason)
	}
	c.wantVerify(t, d3.Secret, "VALID", d3.ID)

	// Every system key.
	br = bulkAnswer{}
	c.must(t, 200, "POST", "/v1/keys/revoke", tn.AdminKey, map[string]any{"type": "system"}, &br)
	if br.Revoked != 2 || len(br.Failed) != 0 {
		t.Errorf("revoke type system: %+v, want 2 revoked", br)
	}
	c.wantVerify(t, s1.Secret, "REVOKED", s1.ID)
	c.wantVerify(t, s2.Secret, "REVOKED", s2.ID)
	c.wantVerify(t, d3.Secret, "VALID", d3.ID)
	c.wantVerify(t, a1.Secret, "VALID", a1.ID)
	c.wantVerify(t, tn.AdminKey, "VALID", tn.AdminKeyID)

	// Every key, the admin's own included.
	br = bulkAnswer{}
	c.must(t, 200, "POST", "/v1/keys/revoke", tn.AdminKey, map[string]any{"all": true, "reason": "incident"}, &br)
	if br.Revoked != 3 || len(br.Failed) != 0 {
		t.Errorf("revoke all: %+v, want 3 revoked (d3, a1 and the admin's bootstrap key)", br)
	}
	c.fail(t, 401, "unauthenticated", "GET", "/v1/me", tn.AdminKey, nil)
	c.fail(t, 401, "unauthenticated", "GET", "/v1/keys", d3.Secret, nil)
	// From here on the admin uses its session.
	everyKey := []apiKey{d1, d2, d3, s1, s2, a1, {ID: tn.AdminKeyID, Secret: tn.AdminKey}}
	for _, k := range everyKey {
		c.wantVerify(t, k.Secret, "REVOKED", k.ID)
		if g := c.getKey(t, tn.Session, k.ID); g.Status != "revoked" || g.RevokedAt == nil || g.RevokedBy == nil || *g.RevokedBy != tn.AdminID {
			t.Errorf("key %s after revoke all: status %s, revoked_by %v", k.ID, g.Status, g.RevokedBy)
		}
	}
	if l := c.listKeys(t, tn.Session, url.Values{"status": {"active"}}); l.Total != 0 {
		t.Errorf("active keys after revoke all: %d", l.Total)
	}
	if l := c.listKeys(t, tn.Session, url.Values{"status": {"revoked"}}); l.Total != len(everyKey) {
		t.Errorf("revoked keys after revoke all: %d, want %d", l.Total, len(everyKey))
	}
	br = bulkAnswer{}
	c.must(t, 200, "POST", "/v1/keys/revoke", tn.Session, map[string]any{"all": true}, &br)
	if br.Revoked != 0 {
		t.Errorf("revoke all again revoked %d", br.Revoked)
	}
	// One key.revoked event per revoked key.
	revokedEvents := c.events(t, tn.Session, url.Values{"action": {"key.revoked"}})
	var targets []string
	for _, e := range revokedEvents {
		targets = append(targets, e.Target.ID)
	}
	slices.Sort(targets)
	if diff := cmp.Diff(sortedIDs(everyKey), targets); diff != "" {
		t.Errorf("key.revoked events, one per key (-want +got):\n%s", diff)
	}
}

func testTenantSwitch(t *testing.T, srv *server, tn *tenant) {
	c := srv.c
	p := addPeople(t, c, tn)
	k := c.createKey(t, p.devTok, map[string]any{"name": "dev-key", "role": "admin"})
	s := c.createKey(t, tn.Session, map[string]any{"name": "sys-key", "owner_id": p.sys.ID})
	keys := map[string]apiKey{"developer's": k, "system": s, "admin's": {ID: tn.AdminKeyID, Secret: tn.AdminKey}}
	for _, k := range keys {
		c.wantVerify(t, k.Secret, "VALID", k.ID)
	}
	var me meAnswer
	c.must(t, 200, "GET", "/v1/me", k.Secret, nil, &me)
	if me.Key == nil || me.Key.ID != k.ID || me.User.ID != p.dev.ID {
		t.Errorf("GET /v1/me with the developer's key: %+v", me)
	}

	if set := c.settings(t, tn.Session, map[string]any{"api_keys_enabled": false}); set.APIKeysEnabled {
		t.Fatal("api_keys_enabled still true")
	}
	for name, k := range keys {
		v := c.verify(t, k.Secret)
		if v.Valid || v.Code != "KEYS_DISABLED" {
			t.Errorf("%s key with keys off: %+v, want KEYS_DISABLED", name, v)
		}
		c.fail(t, 401, "unauthenticated", "GET", "/v1/me", k.Secret, nil)
		r := c.do(t, "GET", "/v1/auth", k.Secret, nil)
		if r.status != 401 || r.header.Get("X-Keyward-Code") != "KEYS_DISABLED" {
			t.Errorf("forward auth with keys off: %d %q", r.status, r.header.Get("X-Keyward-Code"))
		}
	}
	c.fail(t, 403, "api_keys_disabled", "POST", "/v1/keys", p.devTok, map[string]any{"name": "while-off"})
	c.fail(t, 403, "api_keys_disabled", "POST", "/v1/keys", tn.Session, map[string]any{"name": "while-off", "owner_id": p.sys.ID})
	c.fail(t, 403, "api_keys_disabled", "POST", "/v1/keys/"+k.ID+"/rotate", p.devTok, nil)
	// Sessions are not keys: people still work in the console.
	if l := c.listKeys(t, p.devTok, nil); l.Total != 1 || l.Keys[0].Status != "active" {
		t.Errorf("the developer's keys while keys are off: %+v", l)
	}

	if set := c.settings(t, tn.Session, map[string]any{"api_keys_enabled": true}); !set.APIKeysEnabled {
		t.Fatal("api_keys_enabled still false")
	}
	for _, k := range keys {
		c.wantVerify(t, k.Secret, "VALID", k.ID)
	}
	c.must(t, 200, "GET", "/v1/me", k.Secret, nil, &me)
	r := c.do(t, "GET", "/v1/auth", s.Secret, nil)
	if r.status != 200 || r.header.Get("X-Keyward-Key-Id") != s.ID || r.header.Get("X-Keyward-Tenant-Id") != tn.ID ||
		r.header.Get("X-Keyward-Owner-Id") != p.sys.ID || r.header.Get("X-Keyward-Key-Role") != "readonly" {
		t.Errorf("forward auth with keys on: %d %v", r.status, r.header)
	}
	c.createKey(t, p.devTok, map[string]any{"name": "after-on"})
	if n := len(c.events(t, tn.Session, url.Values{"action": {"settings.updated"}})); n != 2 {
		t.Errorf("%d settings.updated events, want 2", n)
	}
}

func testKeyMaxima(t *testing.T, srv *server, tn *tenant) {
	c := srv.c
	p := addPeople(t, c, tn)
	c.settings(t, tn.Session, map[string]any{"max_keys_per_user": 2, "max_keys_per_service_user": 3})

	k1 := c.createKey(t, p.devTok, map[string]any{"name": "k1"})
	c.createKey(t, p.devTok, map[string]any{"name": "k2"})
	c.fail(t, 409, "key_limit_reached", "POST", "/v1/keys", p.devTok, map[string]any{"name": "k3"})
	// An inactive key counts; a revoked one does not.
	c.keyAction(t, p.devTok, k1.ID, "deactivate", nil)
	c.fail(t, 409, "key_limit_reached", "POST", "/v1/keys", p.devTok, map[string]any{"name": "k3"})
	c.keyAction(t, p.devTok, k1.ID, "revoke", nil)
	k3 := c.createKey(t, p.devTok, map[string]any{"name": "k3"})
	c.fail(t, 409, "key_limit_reached", "POST", "/v1/keys", p.devTok, map[string]any{"name": "k4"})
	// A deleted one does not either.
	c.must(t, 204, "DELETE", "/v1/keys/"+k3.ID, p.devTok, nil, nil)
	c.createKey(t, p.devTok, map[string]any{"name": "k4"})
	c.fail(t, 409, "key_limit_reached", "POST", "/v1/keys", p.devTok, map[string]any{"name": "k5"})
	// The admin has its own count (its bootstrap key plus one).
	c.createKey(t, tn.Session, map[string]any{"name": "admin-2"})
	c.fail(t, 409, "key_limit_reached", "POST", "/v1/keys", tn.Session, map[string]any{"name": "admin-3"})

	// A service user: its own maximum.
	var sys []apiKey
	for i := range 3 {
		sys = append(sys, c.createKey(t, tn.Session, map[string]any{"name": fmt.Sprintf("s%d", i), "owner_id": p.sys.ID}))
	}
	c.fail(t, 409, "key_limit_reached", "POST", "/v1/keys", tn.Session, map[string]any{"name": "s3", "owner_id": p.sys.ID})
	// Lowering the maximum keeps existing keys.
	c.settings(t, tn.Session, map[string]any{"max_keys_per_service_user": 1})
	for _, k := range sys {
		c.wantVerify(t, k.Secret, "VALID", k.ID)
	}
	c.fail(t, 409, "key_limit_reached", "POST", "/v1/keys", tn.Session, map[string]any{"name": "s3", "owner_id": p.sys.ID})
	c.settings(t, tn.Session, map[string]any{"max_keys_per_service_user": 4})
	c.createKey(t, tn.Session, map[string]any{"name": "s3", "owner_id": p.sys.ID})
	c.fail(t, 409, "key_limit_reached", "POST", "/v1/keys", tn.Session, map[string]any{"name": "s4", "owner_id": p.sys.ID})

	// Concurrent creates never exceed the maximum.
	racer := c.createUser(t, tn.Session, map[string]any{"email": tn.email("racer"), "name": "Racer", "kind": "system"})
	c.settings(t, tn.Session, map[string]any{"max_keys_per_service_user": 3})
	const n = 12
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.trySend(t, "POST", "/v1/keys", http.Header{"Authorization": {"Bearer " + tn.Session}},
				map[string]any{"name": fmt.Sprintf("race-%d", i), "owner_id": racer.ID})
			if err != nil {
				t.Error(err)
				statuses <- 0
				return
			}
			statuses <- r.status
		}()
	}
	wg.Wait()
	close(statuses)
	got := map[int]int{}
	for st := range statuses {
		got[st]++
	}
	if diff := cmp.Diff(map[int]int{201: 3, 409: n - 3}, got); diff != "" {
		t.Errorf("%d concurrent creates with a maximum of 3: statuses (-want +got):\n%s", n, diff)
	}
	if l := c.listKeys(t, tn.Session, url.Values{"owner_id": {racer.ID}}); l.Total != 3 {
		t.Errorf("the racer holds %d keys, want 3", l.Total)
	}
}

func testMaxExpiration(t *testing.T, srv *server, tn *tenant) {
	c := srv.c
	admin := tn.Session // the admin also holds developer
	c.settings(t, admin, map[string]any{"max_keys_per_user": 20})
	forever := c.createKey(t, admin, map[string]any{"name": "forever"})
	if forever.ExpiresAt != nil {
		t.Fatalf("a key without limit expires at %v", forever.ExpiresAt)
	}
	if set := c.settings(t, admin, map[string]any{"max_expiration_days": 30}); set.MaxExpirationDays == nil || *set.MaxExpirationDays != 30 {
		t.Fatalf("max_expiration_days: %v", set.MaxExpirationDays)
	}
	// The default expiry is now + 30 days.
	before := time.Now().Truncate(time.Microsecond)
	k := c.createKey(t, admin, map[string]any{"name": "default-expiry"})
	after := time.Now()
	if k.ExpiresAt == nil || k.ExpiresAt.Before(before.AddDate(0, 0, 30)) || k.ExpiresAt.After(after.AddDate(0, 0, 30)) {
		t.Errorf("default expiry %v, want now + 30 days", k.ExpiresAt)
	}
	// Shorter is kept as asked.
	short := time.Now().UTC().Add(10 * 24 * time.Hour).Truncate(time.Second)
	ks := c.createKey(t, admin, map[string]any{"name": "short", "expires_at": short.Format(time.RFC3339)})
	if ks.ExpiresAt == nil || !ks.ExpiresAt.Equal(short) {
		t.Errorf("expires_at %v, want %v", ks.ExpiresAt, short)
	}
	// Longer is refused; the past is not a valid expiry.
	long := time.Now().UTC().Add(31 * 24 * time.Hour).Format(time.RFC3339)
	c.fail(t, 400, "expiration_too_long", "POST", "/v1/keys", admin, map[string]any{"name": "long", "expires_at": long})
	c.fail(t, 400, "invalid_argument", "POST", "/v1/keys", admin, map[string]any{"name": "past",
		"expires_at": time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)})
	c.fail(t, 400, "invalid_argument", "POST", "/v1/keys", admin, map[string]any{"name": "garbled", "expires_at": "next tuesday"})
	// Existing keys keep their expiry.
	if g := c.getKey(t, admin, forever.ID); g.ExpiresAt != nil || g.Status != "active" {
		t.Errorf("a key created before the limit: expires %v, status %s", g.ExpiresAt, g.Status)
	}
	c.wantVerify(t, forever.Secret, "VALID", forever.ID)
	// Rotation follows the limit like a new key.
	before = time.Now().Truncate(time.Microsecond)
	rot := c.rotate(t, admin, forever.ID, ptr(60))
	if rot.ExpiresAt == nil || rot.ExpiresAt.Before(before.AddDate(0, 0, 30)) || rot.ExpiresAt.After(time.Now().AddDate(0, 0, 30)) {
		t.Errorf("rotated key expires %v, want now + 30 days", rot.ExpiresAt)
	}
	// null clears the limit.
	if set := c.settings(t, admin, map[string]any{"max_expiration_days": nil}); set.MaxExpirationDays != nil {
		t.Fatalf("max_expiration_days after null: %v", *set.MaxExpirationDays)
	}
	if set := c.settings(t, admin, nil); set.MaxExpirationDays != nil {
		t.Fatalf("GET max_expiration_days after null: %v", *set.MaxExpirationDays)
	}
	if k := c.createKey(t, admin, map[string]any{"name": "after-clear"}); k.ExpiresAt != nil {
		t.Errorf("a key after the limit was cleared expires at %v", k.ExpiresAt)
	}
	c.createKey(t, admin, map[string]any{"name": "far", "expires_at": time.Now().UTC().AddDate(2, 0, 0).Format(time.RFC3339)})
}

func testDeleteUser(t *testing.T, srv *server, tn *tenant) {
	c := srv.c
	p := addPeople(t, c, tn)
	k1 := c.createKey(t, p.devTok, map[string]any{"name": "k1"})
	k2 := c.createKey(t, p.devTok, map[string]any{"name": "k2"})
	k3 := c.createKey(t, p.devTok, map[string]any{"name": "k3"})
	c.keyAction(t, p.devTok, k2.ID, "revoke", nil)
	s1 := c.createKey(t, tn.Session, map[string]any{"name": "s1", "owner_id": p.sys.ID})

	// A developer deletes its own key; an admin may not delete a person's key.
	c.fail(t, 403, "permission_denied", "DELETE", "/v1/keys/"+k3.ID, tn.Session, nil)
	c.fail(t, 404, "not_found", "DELETE", "/v1/keys/"+k3.ID, p.plainTok, nil)
	c.must(t, 204, "DELETE", "/v1/keys/"+k3.ID, p.devTok, nil, nil)
	c.fail(t, 404, "not_found", "GET", "/v1/keys/"+k3.ID, p.devTok, nil)
	c.wantVerify(t, k3.Secret, "NOT_FOUND", "")

	// Deleting the developer deletes its keys, whatever their status.
	c.fail(t, 403, "permission_denied", "DELETE", "/v1/users/"+p.dev.ID, p.devTok, nil)
	c.must(t, 204, "DELETE", "/v1/users/"+p.dev.ID, tn.Session, nil, nil)
	for _, k := range []apiKey{k1, k2} {
		c.fail(t, 404, "not_found", "GET", "/v1/keys/"+k.ID, tn.Session, nil)
		c.wantVerify(t, k.Secret, "NOT_FOUND", "")
	}
	c.fail(t, 404, "not_found", "GET", "/v1/users/"+p.dev.ID, tn.Session, nil)
	c.fail(t, 404, "not_found", "DELETE", "/v1/users/"+p.dev.ID, tn.Session, nil)
	// Its session dies with it, and it cannot log in again.
	c.fail(t, 401, "unauthenticated", "GET", "/v1/me", p.devTok, nil)
	c.fail(t, 401, "unauthenticated", "POST", "/v1/sessions", "", map[string]string{"email": p.devEmail, "password": devPassword})
	if l := c.listKeys(t, tn.Session, url.Values{"owner_id": {p.dev.ID}}); l.Total != 0 || len(l.Keys) != 0 {
		t.Errorf("keys of the deleted user: %v", ids(l.Keys))
	}
	// An admin deletes a system user's key, and the system user with the rest.
	s2 := c.createKey(t, tn.Session, map[string]any{"name": "s2", "owner_id": p.sys.ID})
	c.must(t, 204, "DELETE", "/v1/keys/"+s2.ID, tn.Session, nil, nil)
	c.wantVerify(t, s2.Secret, "NOT_FOUND", "")
	c.wantVerify(t, s1.Secret, "VALID", s1.ID)
	c.must(t, 204, "DELETE", "/v1/users/"+p.sys.ID, tn.Session, nil, nil)
	c.wantVerify(t, s1.Secret, "NOT_FOUND", "")

	if n := len(c.events(t, tn.Session, url.Values{"action": {"user.deleted"}})); n != 2 {
		t.Errorf("%d user.deleted events, want 2", n)
	}
	for _, k := range []apiKey{k1, k2, k3, s1} {
		evs := c.events(t, tn.Session, url.Values{"key_id": {k.ID}})
		if len(evs) == 0 || evs[0].Action != "key.deleted" {
			t.Errorf("events of deleted key %s: %v, want key.deleted last", k.Name, actions(evs))
		}
	}
}

func testRotation(t *testing.T, srv *server, tn *tenant) {
	c := srv.c
	p := addPeople(t, c, tn)
	k := c.createKey(t, p.devTok, map[string]any{"name": "rotating", "description": "d", "role": "admin",
		"scopes": []string{"a", "b"}, "meta": map[string]any{"v": 1}})

	// With a grace period, both keys work during it.
	before := time.Now().Truncate(time.Microsecond)
	n1 := c.rotate(t, p.devTok, k.ID, ptr(3600))
	after := time.Now()
	if n1.Name != k.Name || n1.OwnerID != k.OwnerID || n1.Role != k.Role || !slices.Equal(n1.Scopes, k.Scopes) ||
		!cmp.Equal(n1.Meta, k.Meta) || n1.Secret == k.Secret || n1.Status != "active" || n1.ExpiresAt != nil || n1.LastUsedAt != nil {
		t.Errorf("rotated key %+v from %+v", n1, k)
	}
	old := c.getKey(t, p.devTok, k.ID)
	if old.Status != "active" || old.ExpiresAt == nil || old.ExpiresAt.Before(before.Add(time.Hour)) || old.ExpiresAt.After(after.Add(time.Hour)) {
		t.Errorf("old key during grace: status %s, expires %v, want now + 1h", old.Status, old.ExpiresAt)
	}
	c.wantVerify(t, k.Secret, "VALID", k.ID)
	c.wantVerify(t, n1.Secret, "VALID", n1.ID)

	// Without grace, the old key is expired at once.
	n2 := c.rotate(t, p.devTok, n1.ID, ptr(0))
	c.wantVerify(t, n1.Secret, "EXPIRED", n1.ID)
	c.wantVerify(t, n2.Secret, "VALID", n2.ID)
	c.wantVerify(t, k.Secret, "VALID", k.ID)
	if g := c.getKey(t, p.devTok, n1.ID); g.Status != "expired" {
		t.Errorf("key rotated with grace 0: status %s", g.Status)
	}
	c.fail(t, 401, "unauthenticated", "GET", "/v1/me", n1.Secret, nil)
	// An expired key rotates, revokes, deactivates no more.
	c.fail(t, 409, "conflict", "POST", "/v1/keys/"+n1.ID+"/rotate", p.devTok, map[string]any{"grace_period_seconds": 0})
	pr := c.fail(t, 409, "not_revocable", "POST", "/v1/keys/"+n1.ID+"/revoke", p.devTok, nil)
	if !strings.HasPrefix(pr.Detail, "Unable to Revoke API Key") {
		t.Errorf("revoking an expired key: detail %q", pr.Detail)
	}
	c.fail(t, 409, "conflict", "POST", "/v1/keys/"+n1.ID+"/deactivate", p.devTok, nil)
	c.fail(t, 400, "invalid_argument", "POST", "/v1/keys/"+n2.ID+"/rotate", p.devTok, map[string]any{"grace_period_seconds": -1})
	c.keyAction(t, p.devTok, n2.ID, "deactivate", nil)
	c.fail(t, 409, "conflict", "POST", "/v1/keys/"+n2.ID+"/rotate", p.devTok, nil)
	c.keyAction(t, p.devTok, n2.ID, "reactivate", nil)
	// Only the owner (a developer) rotates a person's key.
	c.fail(t, 403, "permission_denied", "POST", "/v1/keys/"+n2.ID+"/rotate", tn.Session, nil)

	// At the maximum, rotation still issues the successor; the default grace is a day.
	c.settings(t, tn.Session, map[string]any{"max_keys_per_user": 2}) // k (in grace) and n2
	c.fail(t, 409, "key_limit_reached", "POST", "/v1/keys", p.devTok, map[string]any{"name": "more"})
	before = time.Now().Truncate(time.Microsecond)
	n3 := c.rotate(t, p.devTok, n2.ID, nil)
	if g := c.getKey(t, p.devTok, n2.ID); g.ExpiresAt == nil || g.ExpiresAt.Before(before.Add(24*time.Hour)) || g.ExpiresAt.After(time.Now().Add(24*time.Hour)) {
		t.Errorf("default grace: old key expires %v, want now + 24h", g.ExpiresAt)
	}
	c.wantVerify(t, n3.Secret, "VALID", n3.ID)

	// A system key: only a tenant admin rotates it.
	s := c.createKey(t, tn.Session, map[string]any{"name": "sys", "owner_id": p.sys.ID})
	c.fail(t, 404, "not_found", "POST", "/v1/keys/"+s.ID+"/rotate", p.devTok, nil)
	sn := c.rotate(t, tn.Session, s.ID, ptr(0))
	c.wantVerify(t, s.Secret, "EXPIRED", s.ID)
	c.wantVerify(t, sn.Secret, "VALID", sn.ID)
	if sn.OwnerID != p.sys.ID || sn.Type != "system" {
		t.Errorf("rotated system key: owner %s type %s", sn.OwnerID, sn.Type)
	}

	rotated := c.events(t, tn.Session, url.Values{"action": {"key.rotated"}})
	var targets []string
	for _, e := range rotated {
		targets = append(targets, e.Target.ID)
	}
	slices.Sort(targets)
	if diff := cmp.Diff(sorted(k.ID, n1.ID, n2.ID, s.ID), targets); diff != "" {
		t.Errorf("key.rotated events target the old keys (-want +got):\n%s", diff)
	}
	if evs := c.events(t, p.devTok, url.Values{"key_id": {n1.ID}}); !slices.Equal(actions(evs), []string{"key.rotated", "key.created"}) {
		t.Errorf("events of n1: %v", actions(evs))
	}
}

// testListing checks search, filters, every sort column both ways and paging.
func testListing(t *testing.T, srv *server, tn *tenant) {
	c := srv.c
	admin := tn.Session // sessions do not touch any key's last_used_at while listing
	c.settings(t, admin, map[string]any{"max_keys_per_user": 20})
	dana := c.createUser(t, admin, map[string]any{"email": tn.email("dana"), "name": "Dana Developer", "roles": []string{"developer"}, "password": devPassword})
	sys := c.createUser(t, admin, map[string]any{"email": tn.email("zeta.batch"), "name": "Zeta Batch", "kind": "system"})
	danaTok := c.login(t, tn.email("dana"), devPassword).Token
	in := func(d time.Duration) string {
		return time.Now().UTC().Add(d).Truncate(time.Second).Format(time.RFC3339)
	}

	alpha := c.createKey(t, danaTok, map[string]any{"name": "alpha"})
	bravo := c.createKey(t, danaTok, map[string]any{"name": "Bravo", "role": "admin", "expires_at": in(5 * 24 * time.Hour)})
	charlie := c.createKey(t, danaTok, map[string]any{"name": "charlie"})
	delta := c.createKey(t, danaTok, map[string]any{"name": "Delta", "role": "admin"})
	echoOld := c.createKey(t, danaTok, map[string]any{"name": "echo"})
	echoNew := c.rotate(t, danaTok, echoOld.ID, ptr(0))
	foxtrot := c.createKey(t, admin, map[string]any{"name": "foxtrot", "owner_id": sys.ID, "role": "admin", "expires_at": in(2 * 24 * time.Hour)})
	golf := c.createKey(t, admin, map[string]any{"name": "Golf", "owner_id": sys.ID})
	hotel := c.createKey(t, admin, map[string]any{"name": "hotel", "expires_at": in(48 * time.Hour)})
	c.keyAction(t, danaTok, charlie.ID, "deactivate", nil)
	c.keyAction(t, danaTok, delta.ID, "revoke", nil)
	c.wantVerify(t, alpha.Secret, "VALID", alpha.ID)
	c.wantVerify(t, golf.Secret, "VALID", golf.ID)
	c.waitLastUsed(t, admin, alpha.ID)
	c.waitLastUsed(t, admin, golf.ID)
	boot := apiKey{ID: tn.AdminKeyID}

	every := []apiKey{boot, alpha, bravo, charlie, delta, echoOld, echoNew, foxtrot, golf, hotel}
	danas := []apiKey{alpha, bravo, charlie, delta, echoOld, echoNew}
	wantSet := func(name string, q url.Values, want ...apiKey) {
		t.Helper()
		l := c.allKeys(t, admin, q, 200)
		if diff := cmp.Diff(sortedIDs(want), sortedIDs(l)); diff != "" {
			t.Errorf("%s: keys (-want +got):\n%s", name, diff)
		}
	}
	wantSet("everything", nil, every...)
	// Search.
	// A three-letter fragment can also turn up in a random key ID (about
	// one key in 1,500): such a key is a right answer too.
	withIDMatches := func(q string, want ...apiKey) []apiKey {
		for _, k := range every {
			if strings.Contains(strings.ToLower(k.ID), strings.ToLower(q)) && !slices.ContainsFunc(want, func(w apiKey) bool { return w.ID == k.ID }) {
				want = append(want, k)
			}
		}
		return want
	}
	wantSet("q name fragment", url.Values{"q": {"rav"}}, withIDMatches("rav", bravo)...)
	wantSet("q name, other case", url.Values{"q": {"BRAVO"}}, bravo)
	wantSet("q owner email", url.Values{"q": {tn.email("dana")}}, danas...)
	wantSet("q owner email fragment", url.Values{"q": {"DANA@"}}, danas...)
	wantSet("q owner name", url.Values{"q": {"zeta b"}}, foxtrot, golf)
	wantSet("q key id", url.Values{"q": {golf.ID}}, golf)
	wantSet("q key id fragment, other case", url.Values{"q": {strings.ToLower(golf.ID[6:20])}}, golf)
	wantSet("q nothing", url.Values{"q": {"no such thing"}})
	wantSet("q LIKE wildcard taken literally", url.Values{"q": {"%"}})
	// Filters.
	wantSet("type system", url.Values{"type": {"system"}}, foxtrot, golf)
	wantSet("type user", url.Values{"type": {"user"}}, boot, alpha, bravo, charlie, delta, echoOld, echoNew, hotel)
	wantSet("status active", url.Values{"status": {"active"}}, boot, alpha, bravo, echoNew, foxtrot, golf, hotel)
	wantSet("status inactive", url.Values{"status": {"inactive"}}, charlie)
	wantSet("status revoked", url.Values{"status": {"revoked"}}, delta)
	wantSet("status expired", url.Values{"status": {"expired"}}, echoOld)
	wantSet("owner", url.Values{"owner_id": {sys.ID}}, foxtrot, golf)
	wantSet("owner, a person", url.Values{"owner_id": {dana.ID}}, danas...)
	wantSet("q, type and status", url.Values{"q": {"dana@"}, "type": {"user"}, "status": {"active"}}, alpha, bravo, echoNew)
	for _, bad := range []url.Values{{"type": {"robot"}}, {"status": {"gone"}}, {"sort": {"secret"}}, {"page_size": {"201"}},
		{"page_size": {"-1"}}, {"page_token": {"garbage"}}} {
		c.fail(t, 400, "invalid_argument", "GET", "/v1/keys?"+bad.Encode(), admin, nil)
	}
	// A non-admin sees only its own keys.
	if got := c.allKeys(t, danaTok, nil, 2); !slices.Equal(sortedIDs(got), sortedIDs(danas)) {
		t.Errorf("Dana lists %v, want her %d keys", ids(got), len(danas))
	}
	if l := c.listKeys(t, danaTok, url.Values{"owner_id": {sys.ID}}); len(l.Keys) != 0 || l.Total != 0 {
		t.Errorf("Dana lists system keys: %v", ids(l.Keys))
	}

	// The default order is newest first.
	def := c.allKeys(t, admin, nil, 200)
	checkOrder(t, "default", def, "created_at", true)

	// Every sort column, both ways, whole and in pages of two.
	for _, col := range []string{"name", "id", "owner", "type", "role", "status", "created_at", "updated_at", "expires_at", "last_used_at"} {
		var nullsAt [2]string
		for i, desc := range []bool{false, true} {
			sort := col
			if desc {
				sort = "-" + col
			}
			whole := c.allKeys(t, admin, url.Values{"sort": {sort}}, 200)
			if diff := cmp.Diff(sortedIDs(every), sortedIDs(whole)); diff != "" {
				t.Errorf("sort=%s: keys (-want +got):\n%s", sort, diff)
			}
			nullsAt[i] = checkOrder(t, "sort="+sort, whole, col, desc)
			paged := c.allKeys(t, admin, url.Values{"sort": {sort}}, 2)
			if diff := cmp.Diff(sortedIDs(every), sortedIDs(paged)); diff != "" {
				t.Errorf("sort=%s in pages of 2: every key once (-want +got):\n%s", sort, diff)
			}
			checkOrder(t, "sort="+sort+" in pages of 2", paged, col, desc)
		}
		if nullsAt[0] != "" && nullsAt[0] == nullsAt[1] {
			t.Errorf("sort by %s: null values come %s both ascending and descending", col, nullsAt[0])
		}
	}
}

// sortKey is a key's value in one sort column; null for absent times.
type sortKey struct {
	null bool
	text string
	at   time.Time
}

func (a sortKey) compare(b sortKey) int {
	if a.text != b.text {
		return strings.Compare(a.text, b.text)
	}
	return a.at.Compare(b.at)
}

func sortValue(k apiKey, col string) sortKey {
	opt := func(t *time.Time) sortKey {
		if t == nil {
			return sortKey{null: true}
		}
		return sortKey{at: *t}
	}
	switch col {
	case "name":
		return sortKey{text: strings.ToLower(k.Name)}
	case "id":
		return sortKey{text: strings.ToLower(k.ID)}
	case "owner":
		return sortKey{text: strings.ToLower(k.OwnerName)}
	case "type":
		return sortKey{text: k.Type}
	case "role":
		return sortKey{text: k.Role}
	case "status":
		return sortKey{text: k.Status}
	case "created_at":
		return sortKey{at: k.CreatedAt}
	case "updated_at":
		return sortKey{at: k.UpdatedAt}
	case "expires_at":
		return opt(k.ExpiresAt)
	case "last_used_at":
		return opt(k.LastUsedAt)
	}
	panic("unknown sort column " + col)
}

// checkOrder requires keys ordered by col (text case-insensitively), nulls
// together at one end; it returns where the nulls are ("first", "last" or "").
func checkOrder(t *testing.T, name string, keys []apiKey, col string, desc bool) string {
	t.Helper()
	var values []sortKey
	firstNull, lastNull, nulls := -1, -1, 0
	for i, k := range keys {
		v := sortValue(k, col)
		if v.null {
			if firstNull < 0 {
				firstNull = i
			}
			lastNull = i
			nulls++
			continue
		}
		values = append(values, v)
	}
	for i := 1; i < len(values); i++ {
		c := values[i-1].compare(values[i])
		if !desc && c > 0 || desc && c < 0 {
			t.Errorf("%s: out of order at %d: %+v then %+v (ids %v)", name, i, values[i-1], values[i], ids(keys))
			return ""
		}
	}
	switch {
	case nulls == 0 || nulls == len(keys):
		return ""
	case lastNull-firstNull+1 != nulls:
		t.Errorf("%s: null %s values are not together (ids %v)", name, col, ids(keys))
	case firstNull == 0:
		return "first"
	case lastNull == len(keys)-1:
		return "last"
	default:
		t.Errorf("%s: null %s values in the middle (ids %v)", name, col, ids(keys))
	}
	return ""
}

// testTenancy checks that tenants never see each other's data.
func testTenancy(t *testing.T, srv *server, tn *tenant) {
	c := srv.c
	other := srv.newTenant(t, "tenancy-other")
	k := c.createKey(t, tn.Session, map[string]any{"name": "mine"})
	ok := c.createKey(t, other.Session, map[string]any{"name": "theirs"})
	c.fail(t, 404, "not_found", "GET", "/v1/keys/"+ok.ID, tn.Session, nil)
	c.fail(t, 404, "not_found", "POST", "/v1/keys/"+ok.ID+"/revoke", tn.AdminKey, nil)
	c.fail(t, 404, "not_found", "GET", "/v1/users/"+other.AdminID, tn.Session, nil)
	var br bulkAnswer
	c.must(t, 200, "POST", "/v1/keys/revoke", tn.Session, map[string]any{"ids": []string{ok.ID}}, &br)
	if br.Revoked != 0 || len(br.Failed) != 1 || br.Failed[0].Code != "not_found" {
		t.Errorf("revoking another tenant's key by id: %+v", br)
	}
	c.must(t, 200, "POST", "/v1/keys/revoke", tn.Session, map[string]any{"all": true}, &br)
	c.wantVerify(t, ok.Secret, "VALID", ok.ID)
	c.wantVerify(t, other.AdminKey, "VALID", other.AdminKeyID)
	c.wantVerify(t, k.Secret, "REVOKED", k.ID)
	if l := c.allKeys(t, tn.Session, url.Values{"q": {"theirs"}}, 200); len(l) != 0 {
		t.Errorf("search finds another tenant's key: %v", ids(l))
	}
	for _, e := range c.events(t, tn.Session, nil) {
		if e.TenantID != tn.ID {
			t.Errorf("event of tenant %s listed in %s", e.TenantID, tn.ID)
		}
	}
	if got := c.events(t, tn.Session, url.Values{"key_id": {ok.ID}}); len(got) != 0 {
		t.Errorf("events of another tenant's key: %v", actions(got))
	}
}

// waitEvent polls (every 50 ms, up to 10 s) until an event matches q.
func waitEvent(t *testing.T, c *client, cred string, q url.Values) apiEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if evs := c.events(t, cred, q); len(evs) > 0 {
			return evs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event %v within 10 s", q)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testCredentials: how keys and sessions authenticate, and that rights are
// read at every request.
func testCredentials(t *testing.T, srv *server, tn *tenant) {
	c := srv.c
	p := addPeople(t, c, tn)
	ro := c.createKey(t, p.devTok, map[string]any{"name": "reader"})
	rw := c.createKey(t, p.devTok, map[string]any{"name": "writer", "role": "admin"})
	if ro.Role != "readonly" {
		t.Errorf("default role %q, want readonly", ro.Role)
	}

	// A readonly key reads only.
	c.must(t, 200, "GET", "/v1/keys", ro.Secret, nil, nil)
	c.fail(t, 403, "permission_denied", "POST", "/v1/keys", ro.Secret, map[string]any{"name": "x"})
	c.fail(t, 403, "permission_denied", "PATCH", "/v1/keys/"+ro.ID, ro.Secret, map[string]any{"name": "x"})
	c.fail(t, 403, "permission_denied", "POST", "/v1/keys/"+ro.ID+"/revoke", ro.Secret, nil)
	var v verifyAnswer
	c.must(t, 200, "POST", "/v1/keys/verify", "", map[string]any{"key": ro.Secret, "require_role": "admin"}, &v)
	if v.Code != "FORBIDDEN" {
		t.Errorf("verify a readonly key requiring admin: %s", v.Code)
	}
	// X-API-Key works like Authorization; the query string and odd schemes do not.
	var me meAnswer
	r := c.send(t, "GET", "/v1/me", http.Header{"X-Api-Key": {rw.Secret}}, nil)
	if r.status != 200 || json.Unmarshal(r.body, &me) != nil || me.Key == nil || me.Key.ID != rw.ID {
		t.Errorf("GET /v1/me with X-API-Key: %s", r)
	}
	wantProblem(t, c.send(t, "GET", "/v1/me?api_key="+url.QueryEscape(rw.Secret), nil, nil), 401, "unauthenticated")
	wantProblem(t, c.send(t, "GET", "/v1/me?access_token="+url.QueryEscape(p.devTok), nil, nil), 401, "unauthenticated")
	wantProblem(t, c.send(t, "GET", "/v1/me", http.Header{"Authorization": {"Basic " + rw.Secret}}, nil), 401, "unauthenticated")
	c.fail(t, 401, "unauthenticated", "GET", "/v1/me", "kw_notakey", nil)
	c.fail(t, 401, "unauthenticated", "GET", "/v1/me", "", nil)
	c.wantVerify(t, "", "NOT_FOUND", "")
	c.must(t, 200, "POST", "/v1/keys/verify", "", map[string]any{}, &v)
	if v.Valid || v.Code != "NOT_FOUND" {
		t.Errorf("verify without a key: %+v", v)
	}

	// Rights are read at every request.
	c.createKey(t, rw.Secret, map[string]any{"name": "while-developer"})
	c.must(t, 200, "PATCH", "/v1/users/"+p.dev.ID, tn.Session, map[string]any{"roles": []string{}}, nil)
	c.fail(t, 403, "developer_role_required", "POST", "/v1/keys", rw.Secret, map[string]any{"name": "x"})
	c.fail(t, 403, "developer_role_required", "POST", "/v1/keys", p.devTok, map[string]any{"name": "x"})
	c.must(t, 200, "PATCH", "/v1/users/"+p.dev.ID, tn.Session, map[string]any{"roles": []string{"developer"}, "licensed": false}, nil)
	c.fail(t, 403, "license_required", "POST", "/v1/keys", rw.Secret, map[string]any{"name": "x"})
	c.must(t, 200, "PATCH", "/v1/users/"+p.dev.ID, tn.Session, map[string]any{"licensed": true}, nil)
	c.createKey(t, rw.Secret, map[string]any{"name": "licensed-again"})
	// The admin may give itself developer (it has it already from bootstrap) and
	// make the plain user an admin, who then sees everything.
	c.must(t, 200, "PATCH", "/v1/users/"+p.plain.ID, tn.Session, map[string]any{"roles": []string{"tenant_admin"}}, nil)
	if l := c.listKeys(t, p.plainTok, nil); l.Total < 4 {
		t.Errorf("a new tenant admin lists %d keys, want all of the tenant's", l.Total)
	}
	c.must(t, 200, "PATCH", "/v1/users/"+p.plain.ID, tn.Session, map[string]any{"roles": []string{}}, nil)
	c.fail(t, 404, "not_found", "GET", "/v1/keys/"+rw.ID, p.plainTok, nil)
	// Revocation takes effect on a key in use at once.
	c.must(t, 200, "GET", "/v1/me", rw.Secret, nil, nil)
	c.keyAction(t, p.devTok, rw.ID, "revoke", nil)
	c.fail(t, 401, "unauthenticated", "GET", "/v1/me", rw.Secret, nil)

	// Login: the same answer for a wrong password and an unknown email.
	wrong := c.fail(t, 401, "unauthenticated", "POST", "/v1/sessions", "", map[string]string{"email": p.devEmail, "password": "wrong password 1"})
	unknown := c.fail(t, 401, "unauthenticated", "POST", "/v1/sessions", "", map[string]string{"email": tn.email("nobody"), "password": "wrong password 1"})
	if wrong != unknown {
		t.Errorf("wrong password %+v, unknown email %+v: want the same answer", wrong, unknown)
	}
	if n := len(c.events(t, tn.Session, url.Values{"action": {"auth.failed"}})); n < 1 {
		t.Error("no auth.failed event for a wrong password")
	}
	// Logout.
	tok := c.login(t, p.devEmail, devPassword).Token
	c.must(t, 200, "GET", "/v1/me", tok, nil, nil)
	c.must(t, 204, "DELETE", "/v1/sessions/current", tok, nil, nil)
	c.fail(t, 401, "unauthenticated", "GET", "/v1/me", tok, nil)
	c.must(t, 200, "GET", "/v1/me", p.devTok, nil, nil)

	// Bodies.
	c.fail(t, 413, "payload_too_large", "POST", "/v1/keys", p.devTok, `{"name": "`+strings.Repeat("a", 1<<20)+`"}`)
	c.fail(t, 400, "invalid_argument", "POST", "/v1/keys", p.devTok, `{"name": "x"`)
	c.fail(t, 400, "invalid_argument", "POST", "/v1/keys", p.devTok, `{"name": "x", "secret": "kw_mine"}`)
	c.fail(t, 400, "invalid_argument", "POST", "/v1/keys", p.devTok, map[string]any{"name": strings.Repeat("n", 256)})
	c.createKey(t, p.devTok, map[string]any{"name": strings.Repeat("n", 255)})
	c.fail(t, 400, "invalid_argument", "POST", "/v1/users", tn.Session, map[string]any{"email": tn.email("short"), "name": "Short",
		"password": "elevenchars"})
	c.fail(t, 409, "conflict", "POST", "/v1/users", tn.Session, map[string]any{"email": p.devEmail, "name": "Again"})
}

// testOperations: the health, readiness, metrics and document endpoints.
func testOperations(t *testing.T, srv *server) {
	c := srv.c
	c.must(t, 200, "GET", "/healthz", "", nil, nil)
	c.must(t, 200, "GET", "/readyz", "", nil, nil)
	r := c.must(t, 200, "GET", "/metrics", "", nil, nil)
	if !strings.Contains(string(r.body), "keyward_http_requests_total") || !strings.Contains(string(r.body), "keyward_verifications_total") {
		t.Errorf("/metrics lacks keyward's series")
	}
	var doc map[string]any
	c.must(t, 200, "GET", "/v1/openapi.json", "", nil, &doc)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Errorf("openapi %q, want 3.1", v)
	}
}

// collectEvents reads every event of every tenant, as JSON.
func collectEvents(t *testing.T, c *client, tenants []*tenant) []byte {
	t.Helper()
	var out []byte
	for _, tn := range tenants {
		for _, e := range c.events(t, tn.Session, nil) {
			b, _ := json.Marshal(e)
			out = append(out, b...)
		}
	}
	if len(out) == 0 {
		t.Fatal("no events to scan")
	}
	return out
}

// TestRestartPersistence closes Main and starts a new one on the same file:
// keys, statuses, events, users, settings and sessions survive, old secrets
// still verify, and a use noted just before Close is not lost.
func TestRestartPersistence(t *testing.T) {
	testStart := time.Now().Truncate(time.Microsecond)
	dir := t.TempDir()
	rec := &recorder{}
	// An hour between usage flushes: only Close writes last_used_at.
	s1 := startServer(t, dir, rec, serverOpts{UsageInterval: time.Hour})
	c := s1.c
	tn := s1.newTenant(t, "persist")
	p := addPeople(t, c, tn)
	c.settings(t, tn.Session, map[string]any{"max_keys_per_user": 7, "expiry_notice_days": 3, "max_expiration_days": 400})
	active := c.createKey(t, p.devTok, map[string]any{"name": "active", "scopes": []string{"x"}, "meta": map[string]any{"m": 1}})
	inactive := c.createKey(t, p.devTok, map[string]any{"name": "inactive"})
	c.keyAction(t, p.devTok, inactive.ID, "deactivate", nil)
	revoked := c.createKey(t, p.devTok, map[string]any{"name": "revoked"})
	c.keyAction(t, p.devTok, revoked.ID, "revoke", map[string]any{"reason": "test"})
	sysKey := c.createKey(t, tn.Session, map[string]any{"name": "sys", "owner_id": p.sys.ID, "role": "admin"})
	rotOld := c.createKey(t, p.devTok, map[string]any{"name": "rotating"})
	rotNew := c.rotate(t, p.devTok, rotOld.ID, ptr(3600))
	expired := c.rotate(t, p.devTok, rotNew.ID, ptr(0))

	snapshot := func(c *client) (keys []apiKey, users userList, events []apiEvent, set apiSettings, me meAnswer) {
		t.Helper()
		keys = c.allKeys(t, tn.Session, url.Values{"sort": {"id"}}, 200)
		c.must(t, 200, "GET", "/v1/users?page_size=200", tn.Session, nil, &users)
		events = c.events(t, tn.Session, nil)
		set = c.settings(t, tn.Session, nil)
		c.must(t, 200, "GET", "/v1/me", p.devTok, nil, &me)
		return
	}
	keys1, users1, events1, set1, me1 := snapshot(c)

	// A use just before Close: pending in memory only.
	usedAt := time.Now().Truncate(time.Microsecond)
	c.wantVerify(t, active.Secret, "VALID", active.ID)
	if k := c.getKey(t, tn.Session, active.ID); k.LastUsedAt != nil {
		t.Fatalf("last_used_at written before Close with an hour's interval: %v", k.LastUsedAt)
	}
	s1.close(t)

	if fi, err := os.Stat(filepath.Join(dir, "pepper")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pepper file in the data folder: %v, %v", fi, err)
	}
	s2 := startServer(t, dir, rec, serverOpts{})
	c = s2.c
	keys2, users2, events2, set2, me2 := snapshot(c)

	// Keys used on the first server (the admin's, to create users; active,
	// verified just before Close) got last_used_at only from Close's flush.
	usedSince := map[string]time.Time{tn.AdminKeyID: testStart, active.ID: usedAt}
	if len(keys1) == len(keys2) {
		for i := range keys1 {
			since, used := usedSince[keys1[i].ID]
			if !used || keys2[i].ID != keys1[i].ID {
				continue
			}
			if keys1[i].LastUsedAt != nil {
				t.Errorf("key %s: last_used_at %v on the first server, before any flush", keys1[i].Name, keys1[i].LastUsedAt)
			}
			lu := keys2[i].LastUsedAt
			if lu == nil || lu.Before(since) || lu.After(time.Now()) {
				t.Errorf("key %s: last_used_at %v after restart, want the use at or after %s flushed by Close", keys1[i].Name, lu, since)
			}
			keys1[i].LastUsedAt = lu
		}
	}
	if diff := cmp.Diff(keys1, keys2); diff != "" {
		t.Errorf("keys after restart (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(users1, users2); diff != "" {
		t.Errorf("users after restart (-before +after):\n%s", diff)
	}
	// The new server's expiry sweep at start may already have recorded the
	// key that expired on the first one; it must do so shortly.
	events2 = slices.DeleteFunc(events2, func(e apiEvent) bool { return e.Action == "key.expired" })
	waitEvent(t, c, tn.Session, url.Values{"action": {"key.expired"}, "key_id": {rotNew.ID}})
	if diff := cmp.Diff(events1, events2); diff != "" {
		t.Errorf("events after restart (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(set1, set2); diff != "" {
		t.Errorf("settings after restart (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(me1, me2); diff != "" {
		t.Errorf("the developer's session after restart (-before +after):\n%s", diff)
	}
	statuses := map[string]string{}
	for _, k := range keys2 {
		statuses[k.ID] = k.Status
	}
	wantStatus := map[string]string{tn.AdminKeyID: "active", active.ID: "active", inactive.ID: "inactive", revoked.ID: "revoked",
		sysKey.ID: "active", rotOld.ID: "active", rotNew.ID: "expired", expired.ID: "active"}
	if diff := cmp.Diff(wantStatus, statuses); diff != "" {
		t.Errorf("statuses after restart (-want +got):\n%s", diff)
	}

	// Old secrets and sessions still work.
	c.wantVerify(t, tn.AdminKey, "VALID", tn.AdminKeyID)
	c.wantVerify(t, active.Secret, "VALID", active.ID)
	c.wantVerify(t, inactive.Secret, "INACTIVE", inactive.ID)
	c.wantVerify(t, revoked.Secret, "REVOKED", revoked.ID)
	c.wantVerify(t, sysKey.Secret, "VALID", sysKey.ID)
	c.wantVerify(t, rotOld.Secret, "VALID", rotOld.ID)
	c.wantVerify(t, rotNew.Secret, "EXPIRED", rotNew.ID)
	c.wantVerify(t, expired.Secret, "VALID", expired.ID)
	c.must(t, 200, "GET", "/v1/me", tn.AdminKey, nil, nil)
	c.must(t, 200, "GET", "/v1/me", p.plainTok, nil, nil)
	// And the new server goes on.
	c.login(t, p.devEmail, devPassword)
	c.createKey(t, p.devTok, map[string]any{"name": "after-restart"})
	c.waitLastUsed(t, tn.Session, sysKey.ID)

	events := collectEvents(t, c, []*tenant{tn})
	s2.close(t)
	assertNoLeaks(t, rec, map[string]string{"the first server's log": s1.log.String(), "the second server's log": s2.log.String()},
		events, dir)
}

// TestExpiry moves the server's clock past keys' and sessions' expiry.
func TestExpiry(t *testing.T) {
	clk := testclock.New(time.Now().UTC().Truncate(time.Second))
	rec := &recorder{}
	srv := startServer(t, t.TempDir(), rec, serverOpts{Now: clk.Now, SweepInterval: 20 * time.Millisecond})
	c := srv.c
	tn := srv.newTenant(t, "expiry")
	p := addPeople(t, c, tn)
	at := func(d time.Duration) string { return clk.Now().Add(d).Format(time.RFC3339) }
	soon := c.createKey(t, p.devTok, map[string]any{"name": "soon", "role": "admin", "expires_at": at(time.Hour)})
	revokedSoon := c.createKey(t, p.devTok, map[string]any{"name": "revoked-soon", "expires_at": at(time.Hour)})
	c.keyAction(t, p.devTok, revokedSoon.ID, "revoke", nil)
	inactiveSoon := c.createKey(t, p.devTok, map[string]any{"name": "inactive-soon", "expires_at": at(time.Hour)})
	c.keyAction(t, p.devTok, inactiveSoon.ID, "deactivate", nil)
	later := c.createKey(t, p.devTok, map[string]any{"name": "later", "expires_at": at(3 * time.Hour)})
	never := c.createKey(t, p.devTok, map[string]any{"name": "never"})
	c.wantVerify(t, soon.Secret, "VALID", soon.ID)
	c.must(t, 200, "GET", "/v1/me", soon.Secret, nil, nil)

	clk.Advance(2 * time.Hour)
	c.wantVerify(t, soon.Secret, "EXPIRED", soon.ID)
	c.wantVerify(t, inactiveSoon.Secret, "EXPIRED", inactiveSoon.ID)
	c.wantVerify(t, revokedSoon.Secret, "REVOKED", revokedSoon.ID)
	c.wantVerify(t, later.Secret, "VALID", later.ID)
	c.wantVerify(t, never.Secret, "VALID", never.ID)
	for k, want := range map[string]string{soon.ID: "expired", inactiveSoon.ID: "expired", revokedSoon.ID: "revoked", later.ID: "active"} {
		if got := c.getKey(t, p.devTok, k); got.Status != want {
			t.Errorf("key %s (%s): status %s, want %s", got.Name, k, got.Status, want)
		}
	}
	if got := c.allKeys(t, p.devTok, url.Values{"status": {"expired"}}, 200); !slices.Equal(sortedIDs(got), sorted(soon.ID, inactiveSoon.ID)) {
		t.Errorf("status=expired lists %v", ids(got))
	}
	c.fail(t, 401, "unauthenticated", "GET", "/v1/me", soon.Secret, nil)
	pr := c.fail(t, 409, "not_revocable", "POST", "/v1/keys/"+soon.ID+"/revoke", p.devTok, nil)
	if !strings.HasPrefix(pr.Detail, "Unable to Revoke API Key") {
		t.Errorf("revoking an expired key: detail %q", pr.Detail)
	}
	c.fail(t, 409, "conflict", "POST", "/v1/keys/"+soon.ID+"/deactivate", p.devTok, nil)
	c.fail(t, 409, "conflict", "POST", "/v1/keys/"+inactiveSoon.ID+"/reactivate", p.devTok, nil)
	c.fail(t, 409, "conflict", "POST", "/v1/keys/"+soon.ID+"/rotate", p.devTok, nil)
	var br bulkAnswer
	c.must(t, 200, "POST", "/v1/keys/revoke", p.devTok, map[string]any{"ids": []string{soon.ID, later.ID}}, &br)
	if br.Revoked != 1 || len(br.Failed) != 1 || br.Failed[0].ID != soon.ID || br.Failed[0].Code != "not_revocable" {
		t.Errorf("bulk revoke of an expired and a live key: %+v", br)
	}
	// Expired keys do not count against the maximum.
	c.settings(t, tn.Session, map[string]any{"max_keys_per_user": 2})
	c.createKey(t, p.devTok, map[string]any{"name": "second-live"}) // never and this one
	c.fail(t, 409, "key_limit_reached", "POST", "/v1/keys", p.devTok, map[string]any{"name": "third-live"})

	// The sweeper records each expiry once, never for a revoked key.
	for _, k := range []apiKey{soon, inactiveSoon} {
		e := waitEvent(t, c, tn.Session, url.Values{"action": {"key.expired"}, "key_id": {k.ID}})
		if e.Actor.Type != "system" || e.Target.ID != k.ID {
			t.Errorf("key.expired event: %+v", e)
		}
	}
	if evs := c.events(t, tn.Session, url.Values{"action": {"key.expired"}}); len(evs) != 2 {
		t.Errorf("key.expired events %d, want 2 (soon and inactive-soon)", len(evs))
	}
	// The developer sees the expiry of its keys.
	if evs := c.events(t, p.devTok, url.Values{"action": {"key.expired"}}); len(evs) != 2 {
		t.Errorf("the developer sees %d key.expired events, want 2", len(evs))
	}

	// Sessions run out too (12 hours).
	c.must(t, 200, "GET", "/v1/me", p.devTok, nil, nil)
	clk.Advance(11 * time.Hour)
	c.fail(t, 401, "unauthenticated", "GET", "/v1/me", p.devTok, nil)
	c.fail(t, 401, "unauthenticated", "GET", "/v1/me", tn.Session, nil)
	tn.Session = c.login(t, tn.AdminEmail, tn.Password).Token
	l := c.login(t, p.devEmail, devPassword)
	if !l.ExpiresAt.After(clk.Now()) {
		t.Errorf("new session expires at %s, before the server's now %s", l.ExpiresAt, clk.Now())
	}
	c.must(t, 200, "GET", "/v1/me", l.Token, nil, nil)
	c.wantVerify(t, never.Secret, "VALID", never.ID)

	events := collectEvents(t, c, []*tenant{tn})
	srv.close(t)
	assertNoLeaks(t, rec, map[string]string{"the server log": srv.log.String()}, events, srv.dir)
}
