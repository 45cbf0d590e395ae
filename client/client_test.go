package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/testclock"
)

func TestClientSessionsAndMe(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	ctx := ctxT(t)
	anon := s.anon(t)

	_, err := anon.Login(ctx, s.AdminEmail, "wrong password!!")
	wantCode(t, err, 401, CodeUnauthenticated)
	if !IsUnauthenticated(err) {
		t.Errorf("IsUnauthenticated(%v) = false", err)
	}
	_, err = anon.Me(ctx)
	wantCode(t, err, 401, CodeUnauthenticated)

	sess, err := anon.Login(ctx, s.AdminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Token == "" || sess.User.ID != s.AdminID || !sess.ExpiresAt.After(time.Now()) {
		t.Fatalf("session %+v", sess)
	}
	withSession := anon.With(WithSessionToken(sess.Token))
	me, err := withSession.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.User.ID != s.AdminID || me.Tenant.ID != s.TenantID || me.Tenant.Name != "acme" || me.Key != nil {
		t.Errorf("Me with a session: %+v", me)
	}
	if !slices.Equal(me.User.Roles, []string{RoleDeveloper, RoleTenantAdmin}) && !slices.Equal(me.User.Roles, []string{RoleTenantAdmin, RoleDeveloper}) {
		t.Errorf("admin roles %v", me.User.Roles)
	}
	// With does not change the client it came from.
	if _, err := anon.Me(ctx); !IsUnauthenticated(err) {
		t.Errorf("anon after With: %v", err)
	}

	me, err = s.admin(t).Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.Key == nil || me.Key.ID != s.AdminKeyID || me.Key.Role != KeyRoleAdmin || me.User.ID != s.AdminID {
		t.Errorf("Me with a key: %+v", me)
	}

	if err := withSession.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = withSession.Me(ctx)
	wantCode(t, err, 401, CodeUnauthenticated)

	if err := anon.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestClientUsers(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	ctx := ctxT(t)
	c := s.admin(t)

	bob, err := c.CreateUser(ctx, CreateUserRequest{Email: "bob@acme.example", Name: "Bob", Kind: KindUser,
		Roles: []string{RoleDeveloper}, Password: "bob's long password"})
	if err != nil {
		t.Fatal(err)
	}
	if bob.ID == "" || !strings.HasPrefix(bob.ID, "usr_") || bob.TenantID != s.TenantID || bob.Name != "Bob" ||
		bob.Kind != KindUser || !slices.Equal(bob.Roles, []string{RoleDeveloper}) || !bob.Licensed || bob.CreatedAt.IsZero() {
		t.Errorf("created %+v", bob)
	}
	svc, err := c.CreateUser(ctx, CreateUserRequest{Email: "billing@acme.example", Name: "Billing", Kind: KindSystem, Licensed: Ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Kind != KindSystem || svc.Licensed || len(svc.Roles) != 0 || svc.Roles == nil {
		t.Errorf("system user %+v", svc)
	}
	_, err = c.CreateUser(ctx, CreateUserRequest{Email: "bob@acme.example", Name: "Bob again", Kind: KindUser})
	wantCode(t, err, 409, CodeConflict)
	if !IsConflict(err) || StatusCode(err) != 409 {
		t.Errorf("IsConflict/StatusCode of %v", err)
	}
	_, err = c.CreateUser(ctx, CreateUserRequest{Email: "short@acme.example", Name: "Short", Kind: KindUser, Password: "short"})
	wantCode(t, err, 400, CodeInvalidArgument)

	got, err := c.GetUser(ctx, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bob, got); diff != "" {
		t.Errorf("GetUser (-created +got):\n%s", diff)
	}
	_, err = c.GetUser(ctx, "usr_nosuchuser")
	wantCode(t, err, 404, CodeNotFound)
	if !IsNotFound(err) {
		t.Errorf("IsNotFound(%v) = false", err)
	}

	// PATCH: absent fields stay, an empty role list clears the roles.
	up, err := c.UpdateUser(ctx, bob.ID, UpdateUserRequest{Name: Ptr("Robert")})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "Robert" || !slices.Equal(up.Roles, []string{RoleDeveloper}) || !up.Licensed {
		t.Errorf("after a name change: %+v", up)
	}
	up, err = c.UpdateUser(ctx, bob.ID, UpdateUserRequest{Roles: []string{}, Licensed: Ptr(false), Password: Ptr("a brand new password")})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "Robert" || len(up.Roles) != 0 || up.Licensed {
		t.Errorf("after clearing roles and license: %+v", up)
	}
	if _, err := s.anon(t).Login(ctx, "bob@acme.example", "a brand new password"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	_, err = c.UpdateUser(ctx, bob.ID, UpdateUserRequest{Roles: []string{"wizard"}})
	wantCode(t, err, 400, CodeInvalidArgument)

	// Listing, filters and paging.
	for i := range 5 {
		if _, err := c.CreateUser(ctx, CreateUserRequest{Email: fmt.Sprintf("p%d@acme.example", i), Name: fmt.Sprintf("Person %d", i), Kind: KindUser}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := c.ListUsers(ctx, ListUsersParams{Kind: KindSystem})
	if err != nil {
		t.Fatal(err)
	}
	if l.Total != 1 || len(l.Users) != 1 || l.Users[0].ID != svc.ID || l.NextPageToken != "" {
		t.Errorf("kind=system: %+v", l)
	}
	l, err = c.ListUsers(ctx, ListUsersParams{Q: "person", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if l.Total != 5 || len(l.Users) != 2 || l.NextPageToken == "" {
		t.Errorf("q=person page_size=2: total %d, %d users, token %q", l.Total, len(l.Users), l.NextPageToken)
	}
	var names []string
	for u, err := range c.AllUsers(ctx, ListUsersParams{Q: "person", PageSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, u.Name)
	}
	slices.Sort(names)
	if want := []string{"Person 0", "Person 1", "Person 2", "Person 3", "Person 4"}; !slices.Equal(names, want) {
		t.Errorf("AllUsers: %v, want %v", names, want)
	}
	all := 0
	for _, err := range c.AllUsers(ctx, ListUsersParams{PageSize: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		all++
	}
	if all != 8 { // Ada, Robert, Billing, 5 people
		t.Errorf("AllUsers without a filter: %d users, want 8", all)
	}
	_, err = c.ListUsers(ctx, ListUsersParams{PageSize: 201})
	wantCode(t, err, 400, CodeInvalidArgument)

	if err := c.DeleteUser(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetUser(ctx, bob.ID)
	wantCode(t, err, 404, CodeNotFound)
	wantCode(t, c.DeleteUser(ctx, bob.ID), 404, CodeNotFound)

	// An empty ID is refused before any request.
	before := s.calls.Load()
	if _, err := c.GetUser(ctx, ""); err == nil || StatusCode(err) != 0 {
		t.Errorf("GetUser(\"\"): %v", err)
	}
	if err := c.DeleteUser(ctx, ""); err == nil {
		t.Error("DeleteUser(\"\") sent")
	}
	if _, err := c.UpdateUser(ctx, "", UpdateUserRequest{}); err == nil {
		t.Error("UpdateUser(\"\") sent")
	}
	if n := s.calls.Load(); n != before {
		t.Errorf("%d requests for empty IDs", n-before)
	}
}

func TestClientKeys(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	ctx := ctxT(t)
	c := s.admin(t)

	svcUser, err := c.CreateUser(ctx, CreateUserRequest{Email: "billing@acme.example", Name: "Billing", Kind: KindSystem})
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	k, err := c.CreateKey(ctx, CreateKeyRequest{Name: "billing sync", Description: "nightly", OwnerID: svcUser.ID,
		Role: KeyRoleAdmin, Scopes: []string{"invoices:read", "invoices:write"}, Meta: map[string]any{"team": "billing", "n": 3.0},
		ExpiresAt: &expires})
	if err != nil {
		t.Fatal(err)
	}
	if k.Secret == "" || !strings.HasPrefix(k.Secret, k.Start) || !strings.HasPrefix(k.Secret, "kw_") || !wellFormedSecret(k.Secret) {
		t.Fatalf("created key: start %q, secret of %d characters", k.Start, len(k.Secret))
	}
	want := Key{ID: k.ID, TenantID: s.TenantID, Name: "billing sync", Description: "nightly", OwnerID: svcUser.ID,
		OwnerName: "Billing", OwnerEmail: "billing@acme.example", Type: TypeSystem, Role: KeyRoleAdmin,
		Scopes: []string{"invoices:read", "invoices:write"}, Meta: map[string]any{"team": "billing", "n": 3.0},
		Status: StatusActive, Start: k.Start, CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt, ExpiresAt: &expires}
	if diff := cmp.Diff(want, k.Key, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("created key (-want +got):\n%s", diff)
	}
	got, err := c.GetKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&k.Key, got); diff != "" {
		t.Errorf("GetKey (-created +got):\n%s", diff)
	}

	// Refusals decode into *Error.
	_, err = c.CreateKey(ctx, CreateKeyRequest{Name: "past", ExpiresAt: Ptr(time.Now().Add(-time.Hour))})
	wantCode(t, err, 400, CodeInvalidArgument)
	_, err = c.CreateKey(ctx, CreateKeyRequest{Name: ""})
	wantCode(t, err, 400, CodeInvalidArgument)
	_, err = c.GetKey(ctx, "key_doesnotexist")
	wantCode(t, err, 404, CodeNotFound)

	// PATCH.
	up, err := c.UpdateKey(ctx, k.ID, UpdateKeyRequest{Name: Ptr("billing export")})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "billing export" || up.Description != "nightly" || !up.UpdatedAt.After(k.UpdatedAt) && !up.UpdatedAt.Equal(k.UpdatedAt) {
		t.Errorf("after rename: %+v", up)
	}
	up, err = c.UpdateKey(ctx, k.ID, UpdateKeyRequest{Description: Ptr("")})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "billing export" || up.Description != "" {
		t.Errorf("after clearing the description: %+v", up)
	}

	// Lifecycle.
	d, err := c.DeactivateKey(ctx, k.ID)
	if err != nil || d.Status != StatusInactive {
		t.Fatalf("deactivate: %v %+v", err, d)
	}
	_, err = c.DeactivateKey(ctx, k.ID)
	wantCode(t, err, 409, CodeConflict)
	r, err := c.ReactivateKey(ctx, k.ID)
	if err != nil || r.Status != StatusActive {
		t.Fatalf("reactivate: %v %+v", err, r)
	}
	rot, err := c.RotateKey(ctx, k.ID, Ptr(time.Duration(0)))
	if err != nil {
		t.Fatal(err)
	}
	if rot.ID == k.ID || rot.Secret == "" || rot.Secret == k.Secret || rot.Name != "billing export" || rot.OwnerID != svcUser.ID ||
		!slices.Equal(rot.Scopes, k.Scopes) || rot.Meta["team"] != "billing" || rot.Status != StatusActive {
		t.Errorf("rotated: %+v", rot.Key)
	}
	old, err := c.GetKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if old.Status != StatusExpired {
		t.Errorf("old key after rotation with no grace: %s", old.Status)
	}
	_, err = c.RotateKey(ctx, k.ID, nil)
	wantCode(t, err, 409, CodeConflict)
	if _, err := c.RotateKey(ctx, k.ID, Ptr(-time.Second)); err == nil || StatusCode(err) != 0 {
		t.Errorf("negative grace: %v", err)
	}
	rot2, err := c.RotateKey(ctx, rot.ID, nil) // the server's default grace: a day
	if err != nil {
		t.Fatal(err)
	}
	prev, err := c.GetKey(ctx, rot.ID)
	if err != nil {
		t.Fatal(err)
	}
	if prev.Status != StatusActive || prev.ExpiresAt == nil || prev.ExpiresAt.Sub(time.Now()) < 23*time.Hour || prev.ExpiresAt.Sub(time.Now()) > 25*time.Hour {
		t.Errorf("rotated with the default grace: status %s, expires %v", prev.Status, prev.ExpiresAt)
	}

	rv, err := c.RevokeKey(ctx, rot2.ID, "leaked in a log")
	if err != nil {
		t.Fatal(err)
	}
	if rv.Status != StatusRevoked || rv.RevokeReason == nil || *rv.RevokeReason != "leaked in a log" || rv.RevokedAt == nil ||
		rv.RevokedBy == nil {
		t.Errorf("revoked: %+v", rv)
	}
	_, err = c.RevokeKey(ctx, rot2.ID, "")
	e := wantCode(t, err, 409, CodeNotRevocable)
	if !strings.HasPrefix(e.Detail, "Unable to Revoke API Key") || !IsConflict(err) {
		t.Errorf("not_revocable detail %q", e.Detail)
	}
	plain, err := c.CreateKey(ctx, CreateKeyRequest{Name: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Role != KeyRoleReadonly || plain.OwnerID != s.AdminID || plain.Type != TypeUser || plain.ExpiresAt != nil ||
		plain.Scopes == nil || plain.Meta == nil {
		t.Errorf("defaults of a plain key: %+v", plain.Key)
	}
	if rv, err := c.RevokeKey(ctx, plain.ID, ""); err != nil || rv.RevokeReason != nil {
		t.Errorf("revoke without a reason: %v %+v", err, rv)
	}

	if err := c.DeleteKey(ctx, prev.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetKey(ctx, prev.ID)
	wantCode(t, err, 404, CodeNotFound)
	wantCode(t, c.DeleteKey(ctx, prev.ID), 404, CodeNotFound)

	before := s.calls.Load()
	for name, f := range map[string]func() error{
		"GetKey":        func() error { _, err := c.GetKey(ctx, ""); return err },
		"UpdateKey":     func() error { _, err := c.UpdateKey(ctx, "", UpdateKeyRequest{}); return err },
		"DeleteKey":     func() error { return c.DeleteKey(ctx, "") },
		"DeactivateKey": func() error { _, err := c.DeactivateKey(ctx, ""); return err },
		"ReactivateKey": func() error { _, err := c.ReactivateKey(ctx, ""); return err },
		"RevokeKey":     func() error { _, err := c.RevokeKey(ctx, "", ""); return err },
		"RotateKey":     func() error { _, err := c.RotateKey(ctx, "", nil); return err },
		"Usage":         func() error { _, err := c.Usage(ctx, "", time.Time{}, time.Time{}); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s with an empty ID: no error", name)
		}
	}
	if n := s.calls.Load(); n != before {
		t.Errorf("%d requests for empty IDs", n-before)
	}
}

func TestClientKeyListing(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	ctx := ctxT(t)
	c := s.admin(t)
	svcUser, err := c.CreateUser(ctx, CreateUserRequest{Email: "robot@acme.example", Name: "Robot", Kind: KindSystem})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateSettings(ctx, SettingsUpdate{MaxKeysPerUser: Ptr(50), MaxKeysPerServiceUser: Ptr(50)}); err != nil {
		t.Fatal(err)
	}
	var created []string
	for i := range 7 {
		in := CreateKeyRequest{Name: fmt.Sprintf("Alpha %d", i)}
		if i%2 == 1 {
			in.OwnerID = svcUser.ID
			in.Name = fmt.Sprintf("beta %d", i)
		}
		k, err := c.CreateKey(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, k.ID)
	}
	if _, err := c.DeactivateKey(ctx, created[0]); err != nil {
		t.Fatal(err)
	}

	l, err := c.ListKeys(ctx, ListKeysParams{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Total != 8 || len(l.Keys) != 8 || l.NextPageToken != "" { // 7 + the bootstrap key
		t.Fatalf("all keys: total %d, %d keys, token %q", l.Total, len(l.Keys), l.NextPageToken)
	}
	for name, tc := range map[string]struct {
		p    ListKeysParams
		want int
	}{
		"q":        {ListKeysParams{Q: "ALPHA"}, 4},
		"type":     {ListKeysParams{Type: TypeSystem}, 3},
		"status":   {ListKeysParams{Status: StatusInactive}, 1},
		"owner_id": {ListKeysParams{OwnerID: svcUser.ID}, 3},
		"combined": {ListKeysParams{Q: "alpha", Status: StatusActive}, 3},
	} {
		l, err := c.ListKeys(ctx, tc.p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if l.Total != tc.want || len(l.Keys) != tc.want {
			t.Errorf("%s: total %d, %d keys, want %d", name, l.Total, len(l.Keys), tc.want)
		}
	}
	l, err = c.ListKeys(ctx, ListKeysParams{Sort: "name", Q: "a"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range l.Keys {
		names = append(names, k.Name)
	}
	if !slices.IsSortedFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) }) {
		t.Errorf("sort=name: %v", names)
	}
	_, err = c.ListKeys(ctx, ListKeysParams{Sort: "secret"})
	wantCode(t, err, 400, CodeInvalidArgument)
	_, err = c.ListKeys(ctx, ListKeysParams{PageToken: "garbage"})
	wantCode(t, err, 400, CodeInvalidArgument)

	// The iterator follows next_page_token to the end, in order.
	var ids []string
	pages := s.calls.Load()
	for k, err := range c.AllKeys(ctx, ListKeysParams{Sort: "id", PageSize: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	if n := s.calls.Load() - pages; n != 3 {
		t.Errorf("8 keys by 3: %d requests, want 3", n)
	}
	// Text columns, the ID too, sort case-insensitively.
	if len(ids) != 8 || !slices.IsSortedFunc(ids, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) }) ||
		len(slices.Compact(slices.Clone(ids))) != 8 {
		t.Errorf("AllKeys by 3: %v", ids)
	}
	// Stopping early stops fetching.
	pages = s.calls.Load()
	n := 0
	for _, err := range c.AllKeys(ctx, ListKeysParams{PageSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if got := s.calls.Load() - pages; got != 2 {
		t.Errorf("breaking after 3 keys of pages of 2: %d requests, want 2", got)
	}
	// An error ends the iteration with the error.
	var errs int
	for k, err := range c.AllKeys(ctx, ListKeysParams{Status: "sideways"}) {
		if k != nil || err == nil {
			t.Fatalf("bad filter yielded %v, %v", k, err)
		}
		wantCode(t, err, 400, CodeInvalidArgument)
		errs++
	}
	if errs != 1 {
		t.Errorf("bad filter: %d errors, want 1", errs)
	}

	// Bulk revocation by IDs reports each failure; by type and all revoke the rest.
	res, err := c.BulkRevoke(ctx, BulkRevokeRequest{IDs: []string{created[0], created[2], "key_nosuchkey"}, Reason: "cleanup"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revoked != 2 || len(res.Failed) != 1 || res.Failed[0].ID != "key_nosuchkey" || res.Failed[0].Code != CodeNotFound || res.Failed[0].Message == "" {
		t.Errorf("bulk by ids: %+v", res)
	}
	res, err = c.BulkRevoke(ctx, BulkRevokeRequest{IDs: []string{created[0]}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revoked != 0 || len(res.Failed) != 1 || res.Failed[0].Code != CodeNotRevocable {
		t.Errorf("bulk of a revoked key: %+v", res)
	}
	res, err = c.BulkRevoke(ctx, BulkRevokeRequest{Type: TypeSystem})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revoked != 3 || len(res.Failed) != 0 {
		t.Errorf("bulk by type: %+v", res)
	}
	_, err = c.BulkRevoke(ctx, BulkRevokeRequest{})
	wantCode(t, err, 400, CodeInvalidArgument)
	res, err = c.BulkRevoke(ctx, BulkRevokeRequest{All: true, Reason: "incident"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revoked != 3 { // Alpha 4, Alpha 6 and the bootstrap key
		t.Errorf("bulk all: %+v", res)
	}
	// The admin's own key went with it.
	_, err = c.ListKeys(ctx, ListKeysParams{})
	wantCode(t, err, 401, CodeUnauthenticated)
}

func TestClientVerify(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	ctx := ctxT(t)
	c := s.admin(t)
	k, err := c.CreateKey(ctx, CreateKeyRequest{Name: "svc", Role: KeyRoleReadonly, Scopes: []string{"a", "b"}, Meta: map[string]any{"plan": "pro"}})
	if err != nil {
		t.Fatal(err)
	}
	// Verification is public: a client without a credential does it, and
	// one with a credential does not send it.
	counter := &countingTransport{base: http.DefaultTransport}
	sawAuth := false
	probe := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Header.Get("Authorization") != "" {
			sawAuth = true
		}
		return counter.RoundTrip(r)
	})
	vc := New(s.URL, WithAPIKey(s.AdminKey), WithHTTPClient(httpClient(t, probe)))
	res, err := vc.Verify(ctx, VerifyRequest{Key: k.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if sawAuth {
		t.Error("Verify sent the client's credential")
	}
	if !res.Valid || res.Code != VerifyValid || res.Key == nil || res.Key.ID != k.ID || res.Key.TenantID != s.TenantID ||
		res.Key.OwnerID != s.AdminID || res.Key.Role != KeyRoleReadonly || !slices.Equal(res.Key.Scopes, []string{"a", "b"}) ||
		res.Key.Meta["plan"] != "pro" || res.Key.Name != "svc" || res.Key.Type != TypeUser || !res.Key.HasScope("b") || res.Key.HasScope("c") {
		t.Errorf("verify valid: %+v %+v", res, res.Key)
	}
	for _, tc := range []struct {
		in   VerifyRequest
		code string
	}{
		{VerifyRequest{Key: k.Secret, RequireRole: KeyRoleAdmin}, VerifyForbidden},
		{VerifyRequest{Key: k.Secret, RequireScopes: []string{"a", "c"}}, VerifyForbidden},
		{VerifyRequest{Key: k.Secret, RequireScopes: []string{"a", "b"}}, VerifyValid},
		{VerifyRequest{Key: "kw_nonsense"}, VerifyNotFound},
		{VerifyRequest{}, VerifyNotFound},
	} {
		res, err := s.anon(t).Verify(ctx, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if res.Code != tc.code || res.Valid != (tc.code == VerifyValid) || (tc.code == VerifyNotFound) != (res.Key == nil) {
			t.Errorf("verify %+v: %+v, want %s", tc.in.RequireScopes, res, tc.code)
		}
	}
	if _, err := c.RevokeKey(ctx, k.ID, ""); err != nil {
		t.Fatal(err)
	}
	res, err = s.anon(t).Verify(ctx, VerifyRequest{Key: k.Secret})
	if err != nil || res.Valid || res.Code != VerifyRevoked || res.Key == nil || res.Key.ID != k.ID {
		t.Errorf("verify revoked: %v %+v", err, res)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestClientVerifyThrottled(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{verifyFailureLimit: 3})
	ctx := ctxT(t)
	anon := s.anon(t)
	var err error
	for range 10 {
		if _, err = anon.Verify(ctx, VerifyRequest{Key: "kw_nope"}); err != nil {
			break
		}
	}
	e := wantCode(t, err, 429, CodeTooManyRequests)
	if e.RetryAfter <= 0 || e.RetryAfter > time.Minute {
		t.Errorf("Retry-After decoded as %v", e.RetryAfter)
	}
	if e.RequestID == "" {
		t.Error("no request ID decoded")
	}
	if !strings.Contains(e.Error(), "429 too_many_requests: ") || e.Message() != e.Detail {
		t.Errorf("Error() = %q, Message() = %q", e.Error(), e.Message())
	}
	// A valid key is never locked out.
	res, err := anon.Verify(ctx, VerifyRequest{Key: s.AdminKey})
	if err != nil || !res.Valid {
		t.Errorf("valid key while throttled: %v %+v", err, res)
	}
}

func TestClientSettings(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	ctx := ctxT(t)
	c := s.admin(t)
	set, err := c.GetSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !set.APIKeysEnabled || set.MaxExpirationDays != nil || set.KeyPrefix != "kw" || set.MaxKeysPerUser < 1 {
		t.Errorf("bootstrap settings: %+v", set)
	}
	set, err = c.UpdateSettings(ctx, SettingsUpdate{MaxExpirationDays: Value(30), ExpiryNoticeDays: Ptr(7)})
	if err != nil {
		t.Fatal(err)
	}
	if set.MaxExpirationDays == nil || *set.MaxExpirationDays != 30 || set.ExpiryNoticeDays != 7 {
		t.Errorf("after setting 30 days: %+v", set)
	}
	// Absent leaves max_expiration_days alone.
	set, err = c.UpdateSettings(ctx, SettingsUpdate{KeyPrefix: Ptr("acme")})
	if err != nil {
		t.Fatal(err)
	}
	if set.MaxExpirationDays == nil || *set.MaxExpirationDays != 30 || set.KeyPrefix != "acme" {
		t.Errorf("after an unrelated change: %+v", set)
	}
	k, err := c.CreateKey(ctx, CreateKeyRequest{Name: "capped"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Secret, "acme_") || k.ExpiresAt == nil || k.ExpiresAt.Sub(time.Now()) < 29*24*time.Hour {
		t.Errorf("key under a 30-day cap with prefix acme: start %q, expires %v", k.Start, k.ExpiresAt)
	}
	_, err = c.CreateKey(ctx, CreateKeyRequest{Name: "too long", ExpiresAt: Ptr(time.Now().Add(40 * 24 * time.Hour))})
	wantCode(t, err, 400, CodeExpirationTooLong)
	// Null clears it.
	set, err = c.UpdateSettings(ctx, SettingsUpdate{MaxExpirationDays: Null[int]()})
	if err != nil {
		t.Fatal(err)
	}
	if set.MaxExpirationDays != nil || set.KeyPrefix != "acme" || set.ExpiryNoticeDays != 7 {
		t.Errorf("after null: %+v", set)
	}
	_, err = c.UpdateSettings(ctx, SettingsUpdate{MaxKeysPerUser: Ptr(0)})
	wantCode(t, err, 400, CodeInvalidArgument)
	_, err = c.UpdateSettings(ctx, SettingsUpdate{MaxExpirationDays: Value(0)})
	wantCode(t, err, 400, CodeInvalidArgument)

	// Keys off: creation refused, verification KEYS_DISABLED.
	if _, err := c.UpdateSettings(ctx, SettingsUpdate{APIKeysEnabled: Ptr(false)}); err != nil {
		t.Fatal(err)
	}
	sess, err := s.anon(t).Login(ctx, s.AdminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	sc := s.anon(t).With(WithSessionToken(sess.Token))
	_, err = sc.CreateKey(ctx, CreateKeyRequest{Name: "off"})
	wantCode(t, err, 403, CodeAPIKeysDisabled)
	res, err := sc.Verify(ctx, VerifyRequest{Key: k.Secret})
	if err != nil || res.Code != VerifyKeysDisabled {
		t.Errorf("verify while keys are off: %v %+v", err, res)
	}

	// A readonly key may read settings, not change them.
	if _, err := sc.UpdateSettings(ctx, SettingsUpdate{APIKeysEnabled: Ptr(true)}); err != nil {
		t.Fatal(err)
	}
	ro, err := sc.CreateKey(ctx, CreateKeyRequest{Name: "reader", Role: KeyRoleReadonly})
	if err != nil {
		t.Fatal(err)
	}
	rc := s.anon(t).With(WithAPIKey(ro.Secret))
	if _, err := rc.GetSettings(ctx); err != nil {
		t.Errorf("readonly GetSettings: %v", err)
	}
	_, err = rc.UpdateSettings(ctx, SettingsUpdate{ExpiryNoticeDays: Ptr(1)})
	wantCode(t, err, 403, CodePermissionDenied)
	if !IsPermissionDenied(err) {
		t.Errorf("IsPermissionDenied(%v) = false", err)
	}
}

func TestClientNullableJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   SettingsUpdate
		want string
	}{
		{SettingsUpdate{}, `{}`},
		{SettingsUpdate{MaxExpirationDays: Null[int]()}, `{"max_expiration_days":null}`},
		{SettingsUpdate{MaxExpirationDays: Value(0)}, `{"max_expiration_days":0}`},
		{SettingsUpdate{MaxExpirationDays: Value(30), APIKeysEnabled: Ptr(false)}, `{"api_keys_enabled":false,"max_expiration_days":30}`},
	} {
		b, err := json.Marshal(tc.in)
		if err != nil || string(b) != tc.want {
			t.Errorf("marshal %+v: %s %v, want %s", tc.in, b, err, tc.want)
		}
		var back SettingsUpdate
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.MaxExpirationDays.IsZero() != tc.in.MaxExpirationDays.IsZero() {
			t.Errorf("round trip of %s lost set/unset", b)
		}
		v1, ok1 := back.MaxExpirationDays.Get()
		v2, ok2 := tc.in.MaxExpirationDays.Get()
		if v1 != v2 || ok1 != ok2 {
			t.Errorf("round trip of %s: %v %v, want %v %v", b, v1, ok1, v2, ok2)
		}
	}
	for _, tc := range []struct {
		in   UpdateUserRequest
		want string
	}{
		{UpdateUserRequest{}, `{}`},
		{UpdateUserRequest{Roles: []string{}}, `{"roles":[]}`},
		{UpdateUserRequest{Roles: []string{RoleDeveloper}}, `{"roles":["developer"]}`},
	} {
		if b, _ := json.Marshal(tc.in); string(b) != tc.want {
			t.Errorf("marshal %+v: %s, want %s", tc.in, b, tc.want)
		}
	}
	for _, tc := range []struct {
		in   UpdateKeyRequest
		want string
	}{
		{UpdateKeyRequest{Name: Ptr("x")}, `{"name":"x"}`},
		{UpdateKeyRequest{RateLimit: Null[RateLimit]()}, `{"rate_limit":null}`},
		{UpdateKeyRequest{RateLimit: Value(RateLimit{Limit: 5, WindowSeconds: 60})}, `{"rate_limit":{"limit":5,"window_seconds":60}}`},
	} {
		if b, _ := json.Marshal(tc.in); string(b) != tc.want {
			t.Errorf("marshal %+v: %s, want %s", tc.in, b, tc.want)
		}
	}
}

func TestClientEvents(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	ctx := ctxT(t)
	c := s.admin(t)
	start := time.Now().Add(-time.Second)
	k, err := c.CreateKey(ctx, CreateKeyRequest{Name: "audited"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeactivateKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeKey(ctx, k.ID, "done"); err != nil {
		t.Fatal(err)
	}
	l, err := c.ListEvents(ctx, ListEventsParams{KeyID: k.ID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range l.Events {
		actions = append(actions, e.Action)
	}
	if want := []string{"key.revoked", "key.deactivated", "key.created"}; !slices.Equal(actions, want) || l.Total != 3 {
		t.Fatalf("events of the key: %v (total %d), want %v", actions, l.Total, want)
	}
	ev := l.Events[0]
	if ev.ID == "" || ev.TenantID != s.TenantID || ev.Actor.Type != "key" || ev.Actor.ID != s.AdminKeyID || ev.Target.Type != "key" ||
		ev.Target.ID != k.ID || ev.IP == "" || ev.UserAgent != "client-test" || ev.Details == nil || ev.Time.Before(start) {
		t.Errorf("revoked event: %+v", ev)
	}
	l, err = c.ListEvents(ctx, ListEventsParams{Action: "key.deactivated"})
	if err != nil || l.Total != 1 || l.Events[0].Target.ID != k.ID {
		t.Errorf("action filter: %v %+v", err, l)
	}
	l, err = c.ListEvents(ctx, ListEventsParams{ActorID: s.AdminKeyID, Since: start, Until: time.Now().Add(time.Minute)})
	if err != nil || l.Total != 3 {
		t.Errorf("actor and time filters: %v %+v", err, l)
	}
	l, err = c.ListEvents(ctx, ListEventsParams{Until: start.Add(-time.Hour)})
	if err != nil || l.Total != 0 || len(l.Events) != 0 {
		t.Errorf("until before everything: %v %+v", err, l)
	}
	var all []string
	for e, err := range c.AllEvents(ctx, ListEventsParams{PageSize: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, e.ID)
	}
	full, err := c.ListEvents(ctx, ListEventsParams{PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != full.Total || len(all) < 4 {
		t.Errorf("AllEvents by 1: %d events, total %d", len(all), full.Total)
	}
	for i, e := range full.Events {
		if e.ID != all[i] {
			t.Fatalf("AllEvents order differs at %d", i)
		}
	}
}

// TestClientErrorDecoding covers answers that are not problem documents, as
// a proxy in front of Keyward may give.
func TestClientErrorDecoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		header http.Header
		body   string
		want   Error
	}{
		{502, nil, "<html>Bad Gateway</html>", Error{Status: 502, Title: "Bad Gateway", Detail: "<html>Bad Gateway</html>"}},
		{503, http.Header{"Retry-After": {"7"}}, "", Error{Status: 503, Title: "Service Unavailable", RetryAfter: 7 * time.Second}},
		{404, http.Header{"X-Request-Id": {"abc"}}, `{"type":"t","title":"Not found","status":404,"detail":"gone","code":"not_found"}`,
			Error{Status: 404, Code: "not_found", Type: "t", Title: "Not found", Detail: "gone", RequestID: "abc"}},
		{500, nil, strings.Repeat("é", 300), Error{Status: 500, Title: "Internal Server Error", Detail: strings.Repeat("é", 100) + "…"}},
	} {
		h := tc.header
		if h == nil {
			h = http.Header{}
		}
		got := decodeError(&http.Response{StatusCode: tc.status, Header: h}, []byte(tc.body))
		if diff := cmp.Diff(&tc.want, got); diff != "" {
			t.Errorf("%d %q (-want +got):\n%s", tc.status, tc.body, diff)
		}
	}
	wrapped := fmt.Errorf("listing: %w", &Error{Status: 409, Code: CodeKeyLimitReached})
	if !IsCode(wrapped, CodeKeyLimitReached) || !IsConflict(wrapped) || StatusCode(wrapped) != 409 || IsNotFound(wrapped) {
		t.Error("predicates do not see through wrapping")
	}
	if IsCode(errors.New("plain"), CodeNotFound) || StatusCode(errors.New("plain")) != 0 {
		t.Error("predicates on a plain error")
	}
	if got := (&Error{Status: 401, Code: "unauthenticated", Title: "Unauthenticated"}).Error(); got != "keyward: 401 unauthenticated: Unauthenticated" {
		t.Errorf("Error() = %q", got)
	}
}

// TestClientUnreachable: a server that is not there is an error, not a panic
// or an *Error.
func TestClientUnreachable(t *testing.T) {
	t.Parallel()
	// A port that no one listens on.
	c := New("http://127.0.0.1:1", WithAPIKey("kw_secret_that_must_not_appear"))
	_, err := c.Me(ctxT(t))
	if err == nil || StatusCode(err) != 0 {
		t.Fatalf("Me against a closed port: %v", err)
	}
	if strings.Contains(err.Error(), "kw_secret_that_must_not_appear") {
		t.Errorf("the error holds the credential: %v", err)
	}
}

func TestClientUsage(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC))
	s := startServer(t, serverOpts{now: clk.Now})
	ctx := ctxT(t)
	c := s.admin(t)
	k, err := c.CreateKey(ctx, CreateKeyRequest{Name: "counted"})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(in VerifyRequest, want string) {
		t.Helper()
		res, err := c.Verify(ctx, in)
		if err != nil || res.Code != want {
			t.Fatalf("verify: %v %+v, want %s", err, res, want)
		}
	}
	for range 3 {
		verify(VerifyRequest{Key: k.Secret}, VerifyValid)
	}
	verify(VerifyRequest{Key: k.Secret, RequireRole: KeyRoleAdmin}, VerifyForbidden)
	clk.Advance(time.Hour)
	verify(VerifyRequest{Key: k.Secret}, VerifyValid)
	if err := s.rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	u, err := c.Usage(ctx, k.ID, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	h10 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	want := &Usage{KeyID: k.ID, From: h10.Add(-22 * time.Hour), To: h10.Add(2 * time.Hour), Buckets: []UsageBucket{
		{Hour: h10, Counts: map[string]int64{VerifyValid: 3, VerifyForbidden: 1}, Total: 4},
		{Hour: h10.Add(time.Hour), Counts: map[string]int64{VerifyValid: 1}, Total: 1},
	}}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("Usage, default range (-want +got):\n%s", diff)
	}
	u, err = c.Usage(ctx, k.ID, h10.Add(30*time.Minute), h10.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !u.From.Equal(h10) || !u.To.Equal(h10.Add(time.Hour)) || len(u.Buckets) != 1 || u.Buckets[0].Total != 4 {
		t.Errorf("Usage of the first hour: %+v", u)
	}
	_, err = c.Usage(ctx, k.ID, h10, h10.Add(-time.Hour))
	wantCode(t, err, 400, CodeInvalidArgument)
	_, err = c.Usage(ctx, "key_nosuchkey", time.Time{}, time.Time{})
	wantCode(t, err, 404, CodeNotFound)
}

func TestClientRateLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	ctx := ctxT(t)
	c := s.admin(t)
	k, err := c.CreateKey(ctx, CreateKeyRequest{Name: "limited", RateLimit: &RateLimit{Limit: 2, WindowSeconds: 3600}})
	if err != nil {
		t.Fatal(err)
	}
	if k.RateLimit == nil || *k.RateLimit != (RateLimit{Limit: 2, WindowSeconds: 3600}) {
		t.Fatalf("created with a rate limit: %+v", k.RateLimit)
	}
	got, err := c.GetKey(ctx, k.ID)
	if err != nil || got.RateLimit == nil || got.RateLimit.Limit != 2 {
		t.Fatalf("GetKey: %v %+v", err, got)
	}
	var codes []string
	for range 3 {
		res, err := c.Verify(ctx, VerifyRequest{Key: k.Secret})
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, res.Code)
	}
	if want := []string{VerifyValid, VerifyValid, VerifyRateLimited}; !slices.Equal(codes, want) {
		t.Errorf("three verifications under a limit of 2: %v", codes)
	}

	// Through the middleware: 429, and never cached.
	counter := &countingTransport{base: http.DefaultTransport}
	v := New(s.URL, WithHTTPClient(httpClient(t, counter))).NewVerifier(MiddlewareOptions{})
	for range 2 {
		_, err = v.Verify(ctx, k.Secret)
		if e := wantCode(t, err, 429, CodeTooManyRequests); e.VerifyCode != VerifyRateLimited {
			t.Errorf("VerifyCode %q", e.VerifyCode)
		}
	}
	if n := counter.n.Load(); n != 2 {
		t.Errorf("RATE_LIMITED was cached: %d calls for 2 requests", n)
	}

	// PATCH: absent keeps it, a value changes it, null removes it.
	up, err := c.UpdateKey(ctx, k.ID, UpdateKeyRequest{Name: Ptr("renamed")})
	if err != nil || up.RateLimit == nil || up.RateLimit.Limit != 2 {
		t.Errorf("rename kept the limit? %v %+v", err, up)
	}
	up, err = c.UpdateKey(ctx, k.ID, UpdateKeyRequest{RateLimit: Value(RateLimit{Limit: 100, WindowSeconds: 60})})
	if err != nil || up.RateLimit == nil || *up.RateLimit != (RateLimit{Limit: 100, WindowSeconds: 60}) {
		t.Errorf("new limit: %v %+v", err, up)
	}
	up, err = c.UpdateKey(ctx, k.ID, UpdateKeyRequest{RateLimit: Null[RateLimit]()})
	if err != nil || up.RateLimit != nil || up.Name != "renamed" {
		t.Errorf("limit removed: %v %+v", err, up)
	}
	_, err = c.UpdateKey(ctx, k.ID, UpdateKeyRequest{RateLimit: Value(RateLimit{Limit: 0, WindowSeconds: 60})})
	wantCode(t, err, 400, CodeInvalidArgument)
	res, err := c.Verify(ctx, VerifyRequest{Key: k.Secret})
	if err != nil || !res.Valid {
		t.Errorf("verify without a limit: %v %+v", err, res)
	}
}
