package keyward_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward"
)

func TestCreateUser(t *testing.T) {
	ctx := context.Background()
	e := mustService(t)
	a := mustTenant(t, e, "Acme")
	b := mustTenant(t, e, "Globex")
	p := a.Admin.p(t)
	e.clock.Advance(time.Minute)
	u, err := e.svc.CreateUser(ctx, p, keyward.UserInput{Email: " ada@acme.example ", Name: "  Ada  ",
		Roles: []string{keyward.RoleDeveloper, keyward.RoleTenantAdmin, keyward.RoleDeveloper}, Password: ptr("twelve chars")})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	want := &keyward.User{TenantID: a.ID, Email: "ada@acme.example", Name: "Ada", Kind: keyward.KindUser,
		Roles: []string{keyward.RoleTenantAdmin, keyward.RoleDeveloper}, Licensed: true,
		CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	opts := cmpopts.IgnoreFields(keyward.User{}, "ID", "PasswordHash")
	if diff := cmp.Diff(want, u, opts); diff != "" {
		t.Errorf("created user (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(u.ID, keyward.PrefixUser) || !keyward.CheckPassword(u.PasswordHash, "twelve chars") {
		t.Errorf("id %q, password hash usable: %v", u.ID, keyward.CheckPassword(u.PasswordHash, "twelve chars"))
	}
	got, err := e.svc.GetUser(ctx, p, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("user read back (-want +got):\n%s", diff)
	}
	sys, err := e.svc.CreateUser(ctx, p, keyward.UserInput{Email: "svc@acme.example", Name: "Svc", Kind: keyward.KindSystem, Licensed: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	if sys.Kind != keyward.KindSystem || sys.Licensed || sys.PasswordHash != "" || sys.Roles == nil || len(sys.Roles) != 0 {
		t.Errorf("system user: %+v", sys)
	}
	// The same email may live in another tenant.
	if _, err := e.svc.CreateUser(ctx, b.Admin.p(t), keyward.UserInput{Email: "ada@acme.example", Name: "Ada B"}); err != nil {
		t.Errorf("same email in another tenant: %v", err)
	}

	for _, c := range []struct {
		name string
		in   keyward.UserInput
		want string
	}{
		{"duplicate email", keyward.UserInput{Email: "ada@acme.example", Name: "x"}, keyward.EConflict},
		{"duplicate email in another case", keyward.UserInput{Email: "ADA@acme.example", Name: "x"}, keyward.EConflict},
		{"no email", keyward.UserInput{Name: "x"}, keyward.EInvalid},
		{"not an email", keyward.UserInput{Email: "ada", Name: "x"}, keyward.EInvalid},
		{"email with a name", keyward.UserInput{Email: "Ada <ada2@acme.example>", Name: "x"}, keyward.EInvalid},
		{"email too long", keyward.UserInput{Email: strings.Repeat("a", 250) + "@x.io", Name: "x"}, keyward.EInvalid},
		{"no name", keyward.UserInput{Email: "n@acme.example", Name: "  "}, keyward.EInvalid},
		{"name too long", keyward.UserInput{Email: "n@acme.example", Name: strings.Repeat("n", 256)}, keyward.EInvalid},
		{"bad kind", keyward.UserInput{Email: "n@acme.example", Name: "x", Kind: "robot"}, keyward.EInvalid},
		{"unknown role", keyward.UserInput{Email: "n@acme.example", Name: "x", Roles: []string{"owner"}}, keyward.EInvalid},
		{"password of 11", keyward.UserInput{Email: "n@acme.example", Name: "x", Password: ptr("elevenchars")}, keyward.EInvalid},
		{"password of 12 runes", keyward.UserInput{Email: "n@acme.example", Name: "x", Password: ptr("ééééééééééé1")}, ok},
		{"system user with a password", keyward.UserInput{Email: "s2@acme.example", Name: "x", Kind: keyward.KindSystem, Password: ptr(testPassword)}, keyward.EInvalid},
	} {
		_, err := e.svc.CreateUser(ctx, a.Admin.p(t), c.in)
		if keyward.ErrorCode(err) != c.want {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestListUsers(t *testing.T) {
	ctx := context.Background()
	e := mustService(t)
	a := mustTenant(t, e, "Acme")
	mustTenant(t, e, "Globex")
	for _, n := range []string{"carol", "bob", "dave", "erin"} {
		mustUser(t, e, a.Admin, keyward.UserInput{Email: n + "@acme.example", Name: strings.ToUpper(n[:1]) + n[1:]})
	}
	mustUser(t, e, a.Admin, keyward.UserInput{Email: "svc@acme.example", Name: "Billing", Kind: keyward.KindSystem})
	p := a.Admin.p(t)
	names := func(page *keyward.UserPage) []string {
		var out []string
		for _, u := range page.Users {
			out = append(out, u.Name)
		}
		return out
	}
	var all []string
	q := keyward.UserQuery{PageSize: 2}
	for {
		page, err := e.svc.ListUsers(ctx, p, q)
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 6 {
			t.Errorf("total %d, want 6", page.Total)
		}
		all = append(all, names(page)...)
		if page.NextPageToken == "" {
			break
		}
		q.PageToken = page.NextPageToken
	}
	if diff := cmp.Diff([]string{"Acme Admin", "Billing", "Bob", "Carol", "Dave", "Erin"}, all); diff != "" {
		t.Errorf("users by name, paged (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		q    keyward.UserQuery
		want []string
	}{
		{keyward.UserQuery{Kind: keyward.KindSystem}, []string{"Billing"}},
		{keyward.UserQuery{Q: "AR"}, []string{"Carol"}},
		{keyward.UserQuery{Q: "svc@"}, []string{"Billing"}},
		{keyward.UserQuery{Q: "globex"}, nil},
	} {
		page, err := e.svc.ListUsers(ctx, p, c.q)
		if err != nil {
			t.Fatal(err)
		}
		// IDs are searched too, and a random ID can hold the fragment:
		// such a user is a right answer, not one the case is about.
		var got []string
		for _, u := range page.Users {
			in := func(s string) bool { return strings.Contains(strings.ToLower(s), strings.ToLower(c.q.Q)) }
			onlyByID := c.q.Q != "" && in(u.ID) && !in(u.Name) && !in(u.Email)
			if !onlyByID {
				got = append(got, u.Name)
			}
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("ListUsers(%+v) (-want +got):\n%s", c.q, diff)
		}
	}
	for _, q := range []keyward.UserQuery{{PageSize: 201}, {PageSize: -1}, {Kind: "robot"}, {Q: strings.Repeat("q", 256)}, {PageToken: "garbage"}} {
		_, err := e.svc.ListUsers(ctx, p, q)
		wantCode(t, err, keyward.EInvalid)
	}
	// A page token belongs to its query.
	page, err := e.svc.ListUsers(ctx, p, keyward.UserQuery{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ListUsers(ctx, p, keyward.UserQuery{PageSize: 1, Kind: keyward.KindUser, PageToken: page.NextPageToken})
	wantCode(t, err, keyward.EInvalid)
}

func TestUpdateUser(t *testing.T) {
	ctx := context.Background()
	e := mustService(t)
	a := mustTenant(t, e, "Acme")
	dev := mustPerson(t, e, a.Admin, "dev@acme.example", true, keyward.RoleDeveloper)
	sys := mustUser(t, e, a.Admin, keyward.UserInput{Email: "svc@acme.example", Kind: keyward.KindSystem})

	// Anyone changes its own name and password.
	e.clock.Advance(time.Minute)
	u, err := e.svc.UpdateUser(ctx, dev.p(t), dev.userID, keyward.UserPatch{Name: ptr(" Devon "), Password: ptr("a brand new password")})
	if err != nil {
		t.Fatalf("own name and password: %v", err)
	}
	if u.Name != "Devon" || !u.UpdatedAt.Equal(e.clock.Now()) || u.Roles[0] != keyward.RoleDeveloper {
		t.Errorf("after update: %+v", u)
	}
	if _, err := e.svc.Login(ctx, "dev@acme.example", testPassword, ""); err == nil {
		t.Error("the old password still logs in")
	}
	if res, err := e.svc.Login(ctx, "dev@acme.example", "a brand new password", ""); err != nil {
		t.Errorf("the new password: %v", err)
	} else {
		e.remember(res.Token)
	}

	p := a.Admin.p(t)
	for _, c := range []struct {
		name  string
		id    string
		patch keyward.UserPatch
		want  string
	}{
		{"roles and license", dev.userID, keyward.UserPatch{Roles: &[]string{keyward.RoleDeveloper, keyward.RoleTenantAdmin}, Licensed: ptr(false)}, ok},
		{"unknown role", dev.userID, keyward.UserPatch{Roles: &[]string{"root"}}, keyward.EInvalid},
		{"short password", dev.userID, keyward.UserPatch{Password: ptr("short")}, keyward.EInvalid},
		{"empty name", dev.userID, keyward.UserPatch{Name: ptr("")}, keyward.EInvalid},
		{"password for a system user", sys.ID, keyward.UserPatch{Password: ptr(testPassword)}, keyward.EInvalid},
		{"unknown user", "usr_unknown", keyward.UserPatch{Name: ptr("x")}, keyward.ENotFound},
	} {
		_, err := e.svc.UpdateUser(ctx, p, c.id, c.patch)
		if keyward.ErrorCode(err) != c.want {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	got, err := e.svc.GetUser(ctx, p, dev.userID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{keyward.RoleTenantAdmin, keyward.RoleDeveloper}, got.Roles); diff != "" || got.Licensed {
		t.Errorf("roles (-want +got):\n%s licensed %v", diff, got.Licensed)
	}
	if got.Name != "Devon" {
		t.Errorf("a refused patch changed the name to %q", got.Name)
	}
}

// TestTenantKeepsAnAdmin: the last tenant admin can neither lose the role nor
// delete itself.
func TestTenantKeepsAnAdmin(t *testing.T) {
	ctx := context.Background()
	e := mustService(t)
	a := mustTenant(t, e, "Acme")
	dev := []string{keyward.RoleDeveloper}
	_, err := e.svc.UpdateUser(ctx, a.Admin.p(t), a.Admin.userID, keyward.UserPatch{Roles: &dev})
	wantCode(t, err, keyward.EConflict)
	_, err = e.svc.UpdateUser(ctx, a.Admin.p(t), a.Admin.userID, keyward.UserPatch{Roles: &[]string{}})
	wantCode(t, err, keyward.EConflict)
	wantCode(t, e.svc.DeleteUser(ctx, a.Admin.p(t), a.Admin.userID), keyward.EConflict)
	if u := a.Admin.p(t).User; !u.IsAdmin() {
		t.Fatalf("the last admin lost its role: %v", u.Roles)
	}
	// With a second admin, the first may step down; then the second is the last.
	boss := mustPerson(t, e, a.Admin, "boss@acme.example", true, keyward.RoleTenantAdmin)
	if _, err := e.svc.UpdateUser(ctx, a.Admin.p(t), a.Admin.userID, keyward.UserPatch{Roles: &dev}); err != nil {
		t.Fatalf("stepping down beside another admin: %v", err)
	}
	_, err = e.svc.UpdateUser(ctx, boss.p(t), boss.userID, keyward.UserPatch{Roles: &[]string{}})
	wantCode(t, err, keyward.EConflict)
	// A tenant admin may give itself developer, and then create its own keys.
	_, _, err = e.svc.CreateKey(ctx, boss.p(t), keyward.KeyInput{Name: "x"})
	wantCode(t, err, keyward.EDeveloperRequired)
	if _, err := e.svc.UpdateUser(ctx, boss.p(t), boss.userID, keyward.UserPatch{Roles: &[]string{keyward.RoleTenantAdmin, keyward.RoleDeveloper}}); err != nil {
		t.Fatalf("giving itself developer: %v", err)
	}
	mustKey(t, e, boss, keyward.KeyInput{Name: "boss key"})
	// The other tenant's admin does not count.
	b := mustTenant(t, e, "Globex")
	_, err = e.svc.UpdateUser(ctx, b.Admin.p(t), b.Admin.userID, keyward.UserPatch{Roles: &dev})
	wantCode(t, err, keyward.EConflict)
}

// TestDeleteUserDeletesKeys: deleting a user deletes every key of that user
// (verification then answers NOT_FOUND) and its sessions.
func TestDeleteUserDeletesKeys(t *testing.T) {
	ctx := context.Background()
	e := mustService(t)
	a := mustTenant(t, e, "Acme")
	dev := mustPerson(t, e, a.Admin, "dev@acme.example", true, keyward.RoleDeveloper)
	sys := mustUser(t, e, a.Admin, keyward.UserInput{Email: "svc@acme.example", Kind: keyward.KindSystem})
	keep, keepSecret := mustKey(t, e, a.Admin, keyward.KeyInput{Name: "keep"})
	for _, c := range []struct {
		name   string
		userID string
		make   func() []string // secrets
		cred   string
	}{
		{"person", dev.userID, func() []string {
			_, s1 := mustKey(t, e, dev, keyward.KeyInput{Name: "d1"})
			k2, s2 := mustKey(t, e, dev, keyward.KeyInput{Name: "d2"})
			k3, s3 := mustKey(t, e, dev, keyward.KeyInput{Name: "d3"})
			e.svc.DeactivateKey(ctx, dev.p(t), k2.ID)
			e.svc.RevokeKey(ctx, dev.p(t), k3.ID, nil)
			return []string{s1, s2, s3}
		}, dev.cred},
		{"system user", sys.ID, func() []string {
			_, s1 := mustKey(t, e, a.Admin, keyward.KeyInput{Name: "s1", OwnerID: sys.ID})
			_, s2 := mustKey(t, e, a.Admin, keyward.KeyInput{Name: "s2", OwnerID: sys.ID})
			return []string{s1, s2}
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			secrets := c.make()
			var ids []string
			for _, s := range secrets {
				v, err := e.svc.Verify(ctx, keyward.VerifyInput{Key: s})
				if err != nil || v.Key == nil {
					t.Fatalf("Verify before: %+v, %v", v, err)
				}
				ids = append(ids, v.Key.ID)
			}
			e.clock.Advance(time.Second)
			at := e.clock.Now()
			if err := e.svc.DeleteUser(ctx, a.Admin.p(t), c.userID); err != nil {
				t.Fatalf("DeleteUser: %v", err)
			}
			for i, s := range secrets {
				if v, err := e.svc.Verify(ctx, keyward.VerifyInput{Key: s}); err != nil || v.Code != keyward.CodeNotFound {
					t.Errorf("Verify after deletion = %+v, %v; want NOT_FOUND", v, err)
				}
				_, err := e.svc.GetKey(ctx, a.Admin.p(t), ids[i])
				wantCode(t, err, keyward.ENotFound)
			}
			page, err := e.svc.ListKeys(ctx, a.Admin.p(t), keyward.KeyQuery{OwnerID: c.userID})
			if err != nil || page.Total != 0 {
				t.Errorf("keys of the deleted user: %+v, %v", page, err)
			}
			if c.cred != "" {
				_, err := e.svc.Authenticate(ctx, c.cred)
				wantCode(t, err, keyward.EUnauthenticated)
			}
			_, err = e.svc.GetUser(ctx, a.Admin.p(t), c.userID)
			wantCode(t, err, keyward.ENotFound)
			wantCode(t, e.svc.DeleteUser(ctx, a.Admin.p(t), c.userID), keyward.ENotFound)
			evs := eventsSince(t, e, a.ID, at)
			count := map[string]int{}
			for _, ev := range evs {
				count[ev.Action]++
				if ev.Action == keyward.ActionUserDeleted && ev.Details["keys_deleted"] != float64(len(secrets)) {
					t.Errorf("user.deleted details %v", ev.Details)
				}
			}
			if diff := cmp.Diff(map[string]int{keyward.ActionKeyDeleted: len(secrets), keyward.ActionUserDeleted: 1}, count); diff != "" {
				t.Errorf("events of the deletion (-want +got):\n%s", diff)
			}
		})
	}
	if v, _ := e.svc.Verify(ctx, keyward.VerifyInput{Key: keepSecret}); v.Code != keyward.CodeValid || v.Key.ID != keep.ID {
		t.Errorf("another user's key after the deletions: %s", v.Code)
	}
	// The email is free again.
	mustUser(t, e, a.Admin, keyward.UserInput{Email: "dev@acme.example"})
	wantCode(t, e.svc.DeleteUser(ctx, a.Admin.p(t), "usr_unknown"), keyward.ENotFound)
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	e := mustService(t)
	pw := testPassword
	res, err := e.svc.Bootstrap(ctx, keyward.BootstrapInput{Tenant: "Acme", Email: "ada@acme.example", Password: &pw})
	if err != nil {
		t.Fatal(err)
	}
	e.remember(res.Secret)
	key := (&caller{e: e, name: "bootstrap key", cred: res.Secret}).p(t)
	if key.Key.ID != res.KeyID || key.Key.Role != keyward.KeyRoleAdmin || key.Key.ExpiresAt != nil || key.Tenant.ID != res.TenantID {
		t.Errorf("bootstrap key: %+v", key.Key)
	}
	if u := key.User; u.ID != res.UserID || !u.IsAdmin() || !u.IsDeveloper() || !u.Licensed || u.Name != "ada" || u.Kind != keyward.KindUser {
		t.Errorf("bootstrap user: %+v", u)
	}
	want := keyward.DefaultSettings()
	want.APIKeysEnabled = true
	if diff := cmp.Diff(want, key.Tenant.Settings); diff != "" {
		t.Errorf("bootstrap tenant settings (-want +got):\n%s", diff)
	}
	if _, err := e.svc.Login(ctx, "ada@acme.example", testPassword, ""); err != nil {
		t.Errorf("the bootstrap password: %v", err)
	}
	// A second bootstrap of the same email in the same tenant fails clearly.
	_, err = e.svc.Bootstrap(ctx, keyward.BootstrapInput{Tenant: "Acme", Email: "ada@acme.example"})
	wantCode(t, err, keyward.EConflict)
	if err != nil && !strings.Contains(keyward.ErrorMessage(err), "ada@acme.example") {
		t.Errorf("message %q does not name the email", keyward.ErrorMessage(err))
	}
	// Another email joins the existing tenant.
	res2, err := e.svc.Bootstrap(ctx, keyward.BootstrapInput{Tenant: "Acme", Email: "bob@acme.example", Name: "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	e.remember(res2.Secret)
	if res2.TenantID != res.TenantID {
		t.Errorf("second bootstrap made tenant %s, want %s", res2.TenantID, res.TenantID)
	}
	if _, err := e.svc.Login(ctx, "bob@acme.example", testPassword, ""); err == nil {
		t.Error("a bootstrap without a password can log in")
	}
	for _, in := range []keyward.BootstrapInput{
		{Tenant: "", Email: "x@acme.example"},
		{Tenant: "X", Email: "not an email"},
		{Tenant: "X", Email: "x@x.example", Password: ptr("short")},
	} {
		_, err := e.svc.Bootstrap(ctx, in)
		wantCode(t, err, keyward.EInvalid)
	}
}
