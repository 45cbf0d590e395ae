package keyward_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward"
)

// world is the cast of the permission table: one tenant with every kind of
// caller, and a second tenant whose administrator plays the stranger.
type world struct {
	e    *env
	a, b *tenant

	adminDev   *caller // tenant_admin and developer (the bootstrap user), session
	adminOnly  *caller // tenant_admin without developer, session
	adminKey   *caller // the bootstrap admin key of adminDev
	roKey      *caller // a readonly key of adminDev
	dev        *caller // developer, licensed, session
	devKey     *caller // an admin key of dev
	plain      *caller // no roles, session
	unlicensed *caller // developer, not licensed, session
	stranger   *caller // tenant_admin and developer of the other tenant, session

	victim *caller       // a developer of tenant A whose keys are "another person's"
	system *keyward.User // a service user of tenant A

	sessionOf map[string]*caller // user ID → that user's session
	adminOf   map[string]*caller // user ID → an administrator of the user's tenant
	counter   int
	fresh     *keyward.User
}

func mustWorld(tb testing.TB) *world {
	tb.Helper()
	e := mustService(tb)
	w := &world{e: e, a: mustTenant(tb, e, "Acme"), b: mustTenant(tb, e, "Globex")}
	for _, t := range []*tenant{w.a, w.b} {
		mustSettings(tb, e, t.Admin, keyward.SettingsPatch{MaxKeysPerUser: ptr(1000), MaxKeysPerServiceUser: ptr(1000)})
	}
	w.adminDev, w.adminKey, w.stranger = w.a.Admin, w.a.AdminKey, w.b.Admin
	w.adminOnly = mustPerson(tb, e, w.a.Admin, "boss@acme.example", true, keyward.RoleTenantAdmin)
	w.dev = mustPerson(tb, e, w.a.Admin, "dev@acme.example", true, keyward.RoleDeveloper)
	w.plain = mustPerson(tb, e, w.a.Admin, "plain@acme.example", true)
	w.unlicensed = mustPerson(tb, e, w.a.Admin, "unlicensed@acme.example", false, keyward.RoleDeveloper)
	w.victim = mustPerson(tb, e, w.a.Admin, "victim@acme.example", true, keyward.RoleDeveloper)
	w.system = mustUser(tb, e, w.a.Admin, keyward.UserInput{Email: "billing@acme.example", Name: "Billing service", Kind: keyward.KindSystem})
	w.roKey = mustKeyCaller(tb, e, w.a.Admin, "admin's readonly key", keyward.KeyRoleReadonly)
	w.devKey = mustKeyCaller(tb, e, w.dev, "dev's admin key", keyward.KeyRoleAdmin)

	w.sessionOf, w.adminOf = map[string]*caller{}, map[string]*caller{}
	for _, c := range []*caller{w.adminDev, w.adminOnly, w.dev, w.plain, w.unlicensed, w.victim} {
		w.sessionOf[c.userID], w.adminOf[c.userID] = c, w.a.Admin
	}
	w.adminOf[w.system.ID] = w.a.Admin
	w.sessionOf[w.stranger.userID], w.adminOf[w.stranger.userID] = w.stranger, w.b.Admin
	names := map[*caller]string{w.adminDev: "adminDev", w.adminOnly: "adminOnly", w.adminKey: "adminKey",
		w.roKey: "roKey", w.dev: "dev", w.devKey: "devKey", w.plain: "plain", w.unlicensed: "unlicensed",
		w.stranger: "stranger", w.victim: "victim"}
	for c, n := range names {
		c.name = n
	}
	return w
}

// callers are the kinds of caller of the permission table, in perCaller's order.
func (w *world) callers() []*caller {
	return []*caller{w.adminDev, w.adminOnly, w.adminKey, w.roKey, w.dev, w.devKey, w.plain, w.unlicensed, w.stranger}
}

// perCaller holds one expected code for each kind of caller; a positional
// literal cannot leave one out.
type perCaller struct {
	adminDev, adminOnly, adminKey, roKey, dev, devKey, plain, unlicensed, stranger string
}

func (pc perCaller) of(w *world, c *caller) string {
	switch c {
	case w.adminDev:
		return pc.adminDev
	case w.adminOnly:
		return pc.adminOnly
	case w.adminKey:
		return pc.adminKey
	case w.roKey:
		return pc.roKey
	case w.dev:
		return pc.dev
	case w.devKey:
		return pc.devKey
	case w.plain:
		return pc.plain
	case w.unlicensed:
		return pc.unlicensed
	case w.stranger:
		return pc.stranger
	}
	panic("unknown caller " + c.name)
}

func (w *world) next() int { w.counter++; return w.counter }

// ownKey makes a fresh key of the person behind c. A person who may not
// create keys is made a licensed developer for the moment.
func (w *world) ownKey(tb testing.TB, c *caller) *keyward.Key {
	tb.Helper()
	owner := w.sessionOf[c.userID]
	u := owner.p(tb).User
	if !u.IsDeveloper() || !u.Licensed {
		admin := w.adminOf[u.ID]
		roles := append(slices.Clone(u.Roles), keyward.RoleDeveloper)
		if _, err := w.e.svc.UpdateUser(context.Background(), admin.p(tb), u.ID,
			keyward.UserPatch{Roles: &roles, Licensed: ptr(true)}); err != nil {
			tb.Fatalf("grant developer to %s: %v", owner.name, err)
		}
		defer func() {
			if _, err := w.e.svc.UpdateUser(context.Background(), admin.p(tb), u.ID,
				keyward.UserPatch{Roles: &u.Roles, Licensed: &u.Licensed}); err != nil {
				tb.Fatalf("restore %s: %v", owner.name, err)
			}
		}()
	}
	k, _ := mustKey(tb, w.e, owner, keyward.KeyInput{Name: fmt.Sprintf("own key %d of %s", w.next(), owner.name),
		Role: keyward.KeyRoleAdmin, Scopes: []string{"a:read"}, Meta: []byte(`{"team":"x"}`)})
	return k
}

func (w *world) systemKey(tb testing.TB) *keyward.Key {
	tb.Helper()
	k, _ := mustKey(tb, w.e, w.a.Admin, keyward.KeyInput{Name: fmt.Sprintf("system key %d", w.next()), OwnerID: w.system.ID})
	return k
}

// target names which key an action works on.
type target int

const (
	noKey target = iota
	ownKey
	personKey // a key of another person of tenant A (the victim)
	systemKey // a key of tenant A's service user
	freshUser // a new person of tenant A, in world.fresh
)

func (t target) String() string {
	return [...]string{"", "own key", "another person's key", "a system user's key", ""}[t]
}

const (
	ok = ""
	NF = keyward.ENotFound
	PD = keyward.EPermissionDenied
	DR = keyward.EDeveloperRequired
	LR = keyward.ELicenseRequired
)

// TestPermissionTable checks every rule of the contract's "Who may do what"
// for every kind of caller, through real principals. A refusal must leave the
// key as it was and write no event; a success that changes something writes one.
func TestPermissionTable(t *testing.T) {
	w := mustWorld(t)
	ctx := context.Background()
	svc := w.e.svc
	grace := time.Hour

	type action struct {
		name    string
		target  target
		prep    func(tb testing.TB, k *keyward.Key) // readies the target
		do      func(p *keyward.Principal, k *keyward.Key) error
		after   func(tb testing.TB, c *caller, k *keyward.Key) // checks a success
		mutates bool
		want    perCaller
	}
	deactivate := func(tb testing.TB, k *keyward.Key) {
		tb.Helper()
		admin := w.adminOf[k.OwnerID]
		if _, err := svc.DeactivateKey(ctx, admin.p(tb), k.ID); err != nil {
			tb.Fatalf("prepare: deactivate: %v", err)
		}
	}
	statusIs := func(want string) func(testing.TB, *caller, *keyward.Key) {
		return func(tb testing.TB, _ *caller, k *keyward.Key) {
			tb.Helper()
			if got := status(tb, w.e, k.TenantID, k.ID); got != want {
				tb.Errorf("key is %s after success, want %s", got, want)
			}
		}
	}
	seeAll := perCaller{ok, ok, ok, ok, NF, NF, NF, NF, NF}    // admins see any key of their tenant
	changeAny := perCaller{ok, ok, ok, PD, NF, NF, NF, NF, NF} // and, unless readonly, change its state
	actions := []action{
		{name: "view", target: ownKey, do: func(p *keyward.Principal, k *keyward.Key) error {
			_, err := svc.GetKey(ctx, p, k.ID)
			return err
		}, want: perCaller{ok, ok, ok, ok, ok, ok, ok, ok, ok}},
		{name: "view", target: personKey, do: func(p *keyward.Principal, k *keyward.Key) error {
			_, err := svc.GetKey(ctx, p, k.ID)
			return err
		}, want: seeAll},
		{name: "view", target: systemKey, do: func(p *keyward.Principal, k *keyward.Key) error {
			_, err := svc.GetKey(ctx, p, k.ID)
			return err
		}, want: seeAll},
		{name: "list keys", do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.ListKeys(ctx, p, keyward.KeyQuery{})
			return err
		}, want: perCaller{ok, ok, ok, ok, ok, ok, ok, ok, ok}},
		{name: "list events", do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.ListEvents(ctx, p, keyward.EventQuery{})
			return err
		}, want: perCaller{ok, ok, ok, ok, ok, ok, ok, ok, ok}},
		{name: "create a key for oneself", mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, _, err := svc.CreateKey(ctx, p, keyward.KeyInput{Name: "mine"})
			return err
		}, want: perCaller{ok, DR, ok, PD, ok, ok, DR, LR, ok}},
		{name: "create a key for oneself by owner_id", mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, _, err := svc.CreateKey(ctx, p, keyward.KeyInput{Name: "mine", OwnerID: p.User.ID})
			return err
		}, want: perCaller{ok, DR, ok, PD, ok, ok, DR, LR, ok}},
		{name: "create a key for a system user", mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, _, err := svc.CreateKey(ctx, p, keyward.KeyInput{Name: "svc", OwnerID: w.system.ID})
			return err
		}, want: perCaller{ok, ok, ok, PD, PD, PD, PD, PD, NF}},
		{name: "create a key for another person", mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, _, err := svc.CreateKey(ctx, p, keyward.KeyInput{Name: "theirs", OwnerID: w.victim.userID})
			return err
		}, want: perCaller{PD, PD, PD, PD, PD, PD, PD, PD, NF}},
		{name: "rename", target: ownKey, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
			_, err := svc.UpdateKey(ctx, p, k.ID, keyward.KeyPatch{Name: ptr("renamed")})
			return err
		}, after: func(tb testing.TB, _ *caller, k *keyward.Key) {
			if got := storedKey(tb, w.e, k.TenantID, k.ID).Name; got != "renamed" {
				tb.Errorf("name %q after rename", got)
			}
		}, want: perCaller{ok, ok, ok, PD, ok, ok, PD, ok, ok}},
		{name: "rename", target: personKey, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
			_, err := svc.UpdateKey(ctx, p, k.ID, keyward.KeyPatch{Name: ptr("renamed")})
			return err
		}, want: changeAny},
		{name: "rename", target: systemKey, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
			_, err := svc.UpdateKey(ctx, p, k.ID, keyward.KeyPatch{Description: ptr("new description")})
			return err
		}, want: changeAny},
		{name: "delete", target: ownKey, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
			return svc.DeleteKey(ctx, p, k.ID)
		}, after: statusIs("deleted"), want: perCaller{ok, PD, ok, PD, ok, ok, PD, ok, ok}},
		{name: "delete", target: personKey, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
			return svc.DeleteKey(ctx, p, k.ID)
		}, want: perCaller{PD, PD, PD, PD, NF, NF, NF, NF, NF}},
		{name: "delete", target: systemKey, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
			return svc.DeleteKey(ctx, p, k.ID)
		}, after: statusIs("deleted"), want: changeAny},
	}
	for _, tg := range []target{ownKey, personKey, systemKey} {
		want := changeAny
		if tg == ownKey {
			want = perCaller{ok, ok, ok, PD, ok, ok, ok, ok, ok}
		}
		actions = append(actions,
			action{name: "deactivate", target: tg, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
				_, err := svc.DeactivateKey(ctx, p, k.ID)
				return err
			}, after: statusIs(keyward.StatusInactive), want: want},
			action{name: "reactivate", target: tg, prep: deactivate, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
				_, err := svc.ReactivateKey(ctx, p, k.ID)
				return err
			}, after: statusIs(keyward.StatusActive), want: want},
			action{name: "revoke", target: tg, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
				_, err := svc.RevokeKey(ctx, p, k.ID, ptr("test"))
				return err
			}, after: statusIs(keyward.StatusRevoked), want: want},
			action{name: "revoke inactive", target: tg, prep: deactivate, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
				_, err := svc.RevokeKey(ctx, p, k.ID, nil)
				return err
			}, after: statusIs(keyward.StatusRevoked), want: want},
			action{name: "bulk revoke by ids", target: tg, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
				res, err := svc.BulkRevoke(ctx, p, keyward.BulkRevokeInput{IDs: []string{k.ID}})
				if err == nil && len(res.Failed) > 0 {
					return keyward.Errorf(res.Failed[0].Code, "%s", res.Failed[0].Message)
				}
				return err
			}, after: statusIs(keyward.StatusRevoked), want: want},
		)
	}
	rotated := func(tb testing.TB, _ *caller, k *keyward.Key) {
		tb.Helper()
		old := storedKey(tb, w.e, k.TenantID, k.ID)
		if old.ExpiresAt == nil || !old.ExpiresAt.Equal(w.e.clock.Now().Add(grace)) {
			tb.Errorf("rotated key expires at %v, want now + grace", old.ExpiresAt)
		}
	}
	actions = append(actions, []action{
		{name: "rotate", target: ownKey, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
			_, _, err := svc.RotateKey(ctx, p, k.ID, &grace)
			return err
		}, after: rotated, want: perCaller{ok, DR, ok, PD, ok, ok, DR, LR, ok}},
		{name: "rotate", target: personKey, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
			_, _, err := svc.RotateKey(ctx, p, k.ID, &grace)
			return err
		}, want: perCaller{PD, PD, PD, PD, NF, NF, NF, NF, NF}},
		{name: "rotate", target: systemKey, mutates: true, do: func(p *keyward.Principal, k *keyward.Key) error {
			_, _, err := svc.RotateKey(ctx, p, k.ID, &grace)
			return err
		}, after: rotated, want: changeAny},
		{name: "bulk revoke system keys by type", target: systemKey, do: func(p *keyward.Principal, k *keyward.Key) error {
			_, err := svc.BulkRevoke(ctx, p, keyward.BulkRevokeInput{Type: keyward.KindSystem})
			return err
		}, after: func(tb testing.TB, c *caller, k *keyward.Key) {
			// Only the caller's own tenant is touched.
			want := keyward.StatusRevoked
			if c == w.stranger {
				want = keyward.StatusActive
			}
			if got := status(tb, w.e, k.TenantID, k.ID); got != want {
				tb.Errorf("system key of tenant A is %s, want %s", got, want)
			}
		}, want: perCaller{ok, ok, ok, PD, PD, PD, PD, PD, ok}},
		{name: "read settings", do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.GetSettings(ctx, p)
			return err
		}, want: perCaller{ok, ok, ok, ok, ok, ok, ok, ok, ok}},
		{name: "change settings", mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.UpdateSettings(ctx, p, keyward.SettingsPatch{ExpiryNoticeDays: ptr(w.next() % 300)})
			return err
		}, want: perCaller{ok, ok, ok, PD, PD, PD, PD, PD, ok}},
		{name: "list users", do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.ListUsers(ctx, p, keyward.UserQuery{})
			return err
		}, want: perCaller{ok, ok, ok, ok, PD, PD, PD, PD, ok}},
		{name: "view oneself", do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.GetUser(ctx, p, p.User.ID)
			return err
		}, want: perCaller{ok, ok, ok, ok, ok, ok, ok, ok, ok}},
		{name: "view another user", do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.GetUser(ctx, p, w.victim.userID)
			return err
		}, want: seeAll},
		{name: "create a user", mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.CreateUser(ctx, p, keyward.UserInput{Email: fmt.Sprintf("new%d@example.com", w.next()), Name: "New"})
			return err
		}, want: perCaller{ok, ok, ok, PD, PD, PD, PD, PD, ok}},
		{name: "change another user's roles", mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.UpdateUser(ctx, p, w.victim.userID, keyward.UserPatch{Roles: &[]string{keyward.RoleDeveloper}})
			return err
		}, want: changeAny},
		{name: "change another user's license", mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.UpdateUser(ctx, p, w.victim.userID, keyward.UserPatch{Licensed: ptr(true)})
			return err
		}, want: changeAny},
		{name: "change one's own roles", mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.UpdateUser(ctx, p, p.User.ID, keyward.UserPatch{Roles: &p.User.Roles})
			return err
		}, want: perCaller{ok, ok, ok, PD, PD, PD, PD, PD, ok}},
		{name: "change one's own license", mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			_, err := svc.UpdateUser(ctx, p, p.User.ID, keyward.UserPatch{Licensed: &p.User.Licensed})
			return err
		}, want: perCaller{ok, ok, ok, PD, PD, PD, PD, PD, ok}},
		{name: "delete another user", target: freshUser, mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			return svc.DeleteUser(ctx, p, w.fresh.ID)
		}, want: perCaller{ok, ok, ok, PD, NF, NF, NF, NF, NF}},
		{name: "delete oneself", mutates: true, do: func(p *keyward.Principal, _ *keyward.Key) error {
			return svc.DeleteUser(ctx, p, p.User.ID)
		}, want: perCaller{keyward.EConflict, keyward.EConflict, keyward.EConflict, PD, PD, PD, PD, PD, keyward.EConflict}},
	}...)

	for _, a := range actions {
		name := a.name
		if a.target != noKey {
			name += " " + a.target.String()
		}
		t.Run(name, func(t *testing.T) {
			for _, c := range w.callers() {
				t.Run(c.name, func(t *testing.T) {
					var k *keyward.Key
					switch a.target {
					case ownKey:
						k = w.ownKey(t, c)
					case personKey:
						k = w.ownKey(t, w.victim)
					case systemKey:
						k = w.systemKey(t)
					case freshUser:
						w.fresh = mustUser(t, w.e, w.a.Admin, keyward.UserInput{Email: fmt.Sprintf("gone%d@acme.example", w.next())})
					}
					if a.prep != nil {
						a.prep(t, k)
					}
					var before *keyward.Key
					if k != nil {
						before = storedKey(t, w.e, k.TenantID, k.ID)
					}
					p := c.p(t)
					w.e.clock.Advance(time.Second)
					at := w.e.clock.Now()
					err := a.do(p, k)
					want := a.want.of(w, c)
					wantCode(t, err, want)
					events := append(eventsSince(t, w.e, w.a.ID, at), eventsSince(t, w.e, w.b.ID, at)...)
					if err != nil {
						if len(events) != 0 {
							t.Errorf("a refused %s wrote %d events, first %s", a.name, len(events), events[0].Action)
						}
						if k != nil {
							if diff := cmp.Diff(before, storedKey(t, w.e, k.TenantID, k.ID)); diff != "" {
								t.Errorf("a refused %s changed the key (-before +after):\n%s", a.name, diff)
							}
						}
						return
					}
					if a.mutates && len(events) == 0 {
						t.Errorf("%s wrote no event", a.name)
					}
					if a.after != nil && want == ok {
						a.after(t, c, k)
					}
				})
			}
		})
	}
}

// TestVisibility: a tenant admin sees every key, user and event of the
// tenant; anyone else only their own keys and the events about them; and no
// one sees anything of another tenant.
func TestVisibility(t *testing.T) {
	w := mustWorld(t)
	ctx := context.Background()
	svc := w.e.svc
	own := map[*caller]*keyward.Key{}
	for _, c := range w.callers() {
		own[c] = w.ownKey(t, c)
	}
	victimKey, sysKey := w.ownKey(t, w.victim), w.systemKey(t)
	if _, err := svc.RevokeKey(ctx, w.adminOnly.p(t), own[w.dev].ID, ptr("by an admin")); err != nil {
		t.Fatal(err)
	}
	mustSettings(t, w.e, w.a.Admin, keyward.SettingsPatch{ExpiryNoticeDays: ptr(3)})

	allA := allEvents(t, w.e, w.a.ID, keyward.EventFilter{})
	allB := allEvents(t, w.e, w.b.ID, keyward.EventFilter{})
	ids := func(evs []*keyward.Event) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, ev.ID)
		}
		slices.Sort(out)
		return out
	}
	for _, c := range w.callers() {
		t.Run(c.name, func(t *testing.T) {
			p := c.p(t)
			admin := p.IsAdmin()
			page, err := svc.ListKeys(ctx, p, keyward.KeyQuery{PageSize: 200})
			if err != nil {
				t.Fatalf("ListKeys: %v", err)
			}
			listed := map[string]bool{}
			for _, k := range page.Keys {
				listed[k.ID] = true
				if k.TenantID != p.Tenant.ID {
					t.Errorf("ListKeys shows %s of tenant %s", k.ID, k.TenantID)
				}
				if !admin && k.OwnerID != p.User.ID {
					t.Errorf("ListKeys shows %s, owned by %s, to a non-admin", k.ID, k.OwnerName)
				}
			}
			if page.Total != len(page.Keys) {
				t.Errorf("total %d for %d keys", page.Total, len(page.Keys))
			}
			inA := p.Tenant.ID == w.a.ID
			for _, c := range []struct {
				what string
				k    *keyward.Key
				want bool
			}{
				{"own key", own[c], true},
				{"another person's key", victimKey, admin && inA},
				{"a system key", sysKey, admin && inA},
				{"the other tenant's key", own[w.stranger], !inA},
			} {
				if listed[c.k.ID] != c.want {
					t.Errorf("ListKeys shows %s: %v, want %v", c.what, listed[c.k.ID], c.want)
				}
			}
			if !admin {
				page, err := svc.ListKeys(ctx, p, keyward.KeyQuery{OwnerID: w.victim.userID})
				if err != nil || len(page.Keys) != 0 || page.Total != 0 {
					t.Errorf("ListKeys(owner_id=victim) = %+v, %v; want nothing", page, err)
				}
			}

			var got []*keyward.Event
			q := keyward.EventQuery{PageSize: 200}
			for {
				page, err := svc.ListEvents(ctx, p, q)
				if err != nil {
					t.Fatalf("ListEvents: %v", err)
				}
				got = append(got, page.Events...)
				if page.NextPageToken == "" {
					break
				}
				q.PageToken = page.NextPageToken
			}
			var want []*keyward.Event
			for _, ev := range map[bool][]*keyward.Event{true: allA, false: allB}[inA] {
				if admin || ev.ActorUserID == p.User.ID || ev.TargetOwnerID == p.User.ID {
					want = append(want, ev)
				}
			}
			if diff := cmp.Diff(ids(want), ids(got)); diff != "" {
				t.Errorf("ListEvents (-want +got):\n%s", diff)
			}
			if c == w.dev {
				found := false
				for _, ev := range got {
					if ev.Action == keyward.ActionKeyRevoked && ev.Target.ID == own[w.dev].ID && ev.ActorUserID == w.adminOnly.userID {
						found = true
					}
					if ev.Action == keyward.ActionSettingsUpdated {
						t.Errorf("a developer sees settings.updated")
					}
				}
				if !found {
					t.Errorf("the developer does not see an admin revoking its key")
				}
			}

			set, err := svc.GetSettings(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if wantDays := map[bool]int{true: 3, false: 14}[inA]; set.ExpiryNoticeDays != wantDays {
				t.Errorf("GetSettings shows expiry_notice_days %d, want %d (its own tenant's)", set.ExpiryNoticeDays, wantDays)
			}
			if admin {
				users, err := svc.ListUsers(ctx, p, keyward.UserQuery{PageSize: 200})
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range users.Users {
					if u.TenantID != p.Tenant.ID {
						t.Errorf("ListUsers shows %s of tenant %s", u.Email, u.TenantID)
					}
				}
				if wantN := map[bool]int{true: 7, false: 1}[inA]; users.Total != wantN || len(users.Users) != wantN {
					t.Errorf("ListUsers: %d users, total %d; want %d", len(users.Users), users.Total, wantN)
				}
			}
		})
	}
}

// TestOtherTenantGetsNotFound: every operation a stranger aims at another
// tenant's objects answers not_found and changes nothing.
func TestOtherTenantGetsNotFound(t *testing.T) {
	w := mustWorld(t)
	ctx := context.Background()
	svc := w.e.svc
	devKey, sysKey := w.ownKey(t, w.dev), w.systemKey(t)
	p := w.stranger.p(t)
	for _, k := range []*keyward.Key{devKey, sysKey} {
		_, err := svc.GetKey(ctx, p, k.ID)
		wantCode(t, err, NF)
		_, err = svc.UpdateKey(ctx, p, k.ID, keyward.KeyPatch{Name: ptr("x")})
		wantCode(t, err, NF)
		_, err = svc.DeactivateKey(ctx, p, k.ID)
		wantCode(t, err, NF)
		_, err = svc.RevokeKey(ctx, p, k.ID, nil)
		wantCode(t, err, NF)
		_, _, err = svc.RotateKey(ctx, p, k.ID, nil)
		wantCode(t, err, NF)
		wantCode(t, svc.DeleteKey(ctx, p, k.ID), NF)
	}
	res, err := svc.BulkRevoke(ctx, p, keyward.BulkRevokeInput{IDs: []string{devKey.ID, sysKey.ID}})
	if err != nil {
		t.Fatal(err)
	}
	want := &keyward.BulkRevokeResult{Failed: []keyward.BulkFailure{
		{ID: devKey.ID, Code: NF, Message: "key not found"}, {ID: sysKey.ID, Code: NF, Message: "key not found"}}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("BulkRevoke of another tenant's keys (-want +got):\n%s", diff)
	}
	for _, all := range []keyward.BulkRevokeInput{{All: true}, {Type: keyward.KindUser}, {Type: keyward.KindSystem}} {
		if _, err := svc.BulkRevoke(ctx, w.stranger.p(t), all); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{w.dev.userID, w.system.ID} {
		_, err := svc.GetUser(ctx, p, id)
		wantCode(t, err, NF)
		_, err = svc.UpdateUser(ctx, p, id, keyward.UserPatch{Name: ptr("x")})
		wantCode(t, err, NF)
		wantCode(t, svc.DeleteUser(ctx, p, id), NF)
		_, _, err = svc.CreateKey(ctx, p, keyward.KeyInput{Name: "x", OwnerID: id})
		wantCode(t, err, NF)
	}
	ev, err := svc.ListEvents(ctx, p, keyward.EventQuery{KeyID: devKey.ID})
	if err != nil || len(ev.Events) != 0 {
		t.Errorf("ListEvents(key_id of another tenant) = %d events, %v; want none", len(ev.Events), err)
	}
	ev, err = svc.ListEvents(ctx, p, keyward.EventQuery{ActorID: w.a.Admin.userID})
	if err != nil || len(ev.Events) != 0 {
		t.Errorf("ListEvents(actor_id of another tenant) = %d events, %v; want none", len(ev.Events), err)
	}
	for _, k := range []*keyward.Key{devKey, sysKey} {
		if got := status(t, w.e, w.a.ID, k.ID); got != keyward.StatusActive {
			t.Errorf("tenant A's key is %s after the stranger's attempts, want active", got)
		}
	}
	// Tenant A's bootstrap key survived the stranger's "revoke all".
	if _, err := svc.Authenticate(ctx, w.adminKey.cred); err != nil {
		t.Errorf("tenant A's admin key after the other tenant revoked all: %v", err)
	}
}

// TestAuthenticateRefusals: a credential that does not work is unauthenticated,
// whatever the reason, and the answer never says which.
func TestAuthenticateRefusals(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	a := mustTenant(t, e, "Acme")
	mustSettings(t, e, a.Admin, keyward.SettingsPatch{MaxKeysPerUser: ptr(20)})
	p := a.Admin.p(t)
	newKey := func(in keyward.KeyInput) string {
		_, secret := mustKey(t, e, a.Admin, in)
		return secret
	}
	active := newKey(keyward.KeyInput{Name: "active"})
	inactive := newKey(keyward.KeyInput{Name: "inactive"})
	revoked := newKey(keyward.KeyInput{Name: "revoked"})
	expiring := newKey(keyward.KeyInput{Name: "expiring", ExpiresAt: ptr(t0.Add(time.Hour))})
	deleted := newKey(keyward.KeyInput{Name: "deleted"})
	keys, err := e.svc.ListKeys(ctx, p, keyward.KeyQuery{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*keyward.Key{}
	for _, k := range keys.Keys {
		byName[k.Name] = k
	}
	if _, err := e.svc.DeactivateKey(ctx, p, byName["inactive"].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RevokeKey(ctx, p, byName["revoked"].ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteKey(ctx, p, byName["deleted"].ID); err != nil {
		t.Fatal(err)
	}
	unknown := mustSecret(t, "kw")
	for _, c := range []struct {
		name, cred string
		want       string
	}{
		{"active key", active, ok},
		{"session", a.Admin.cred, ok},
		{"empty", "", keyward.EUnauthenticated},
		{"garbage", "hello", keyward.EUnauthenticated},
		{"too long", strings.Repeat("a", 600), keyward.EUnauthenticated},
		{"unknown key", unknown, keyward.EUnauthenticated},
		{"bad checksum", changeLast(active), keyward.EUnauthenticated},
		{"inactive key", inactive, keyward.EUnauthenticated},
		{"revoked key", revoked, keyward.EUnauthenticated},
		{"deleted key", deleted, keyward.EUnauthenticated},
		{"unknown session", "kwsess_" + strings.Repeat("A", 43), keyward.EUnauthenticated},
		{"session prefix only", "kwsess_", keyward.EUnauthenticated},
		{"key with Bearer", "Bearer " + active, keyward.EUnauthenticated},
	} {
		_, err := e.svc.Authenticate(ctx, c.cred)
		if keyward.ErrorCode(err) != c.want {
			t.Errorf("%s: Authenticate error %v, want code %q", c.name, err, c.want)
		}
		if err != nil {
			if msg := keyward.ErrorMessage(err); msg != "missing or invalid credential" {
				t.Errorf("%s: message %q says more than the other refusals", c.name, msg)
			}
		}
	}
	if _, err := e.svc.Authenticate(ctx, expiring); err != nil {
		t.Errorf("before expiry: %v", err)
	}
	e.clock.Advance(time.Hour)
	_, err = e.svc.Authenticate(ctx, expiring)
	wantCode(t, err, keyward.EUnauthenticated)

	// The tenant switch turns every key off for authentication; sessions go on,
	// so that an administrator can turn it back on.
	mustSettings(t, e, a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(false)})
	for _, secret := range []string{active, a.AdminKey.cred} {
		_, err := e.svc.Authenticate(ctx, secret)
		wantCode(t, err, keyward.EUnauthenticated)
	}
	mustSettings(t, e, a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(true)})
	if _, err := e.svc.Authenticate(ctx, active); err != nil {
		t.Errorf("after switching keys back on: %v", err)
	}

	// The session expires after its lifetime (12 hours by default); an hour has gone.
	e.clock.Advance(10 * time.Hour)
	if _, err := e.svc.Authenticate(ctx, a.Admin.cred); err != nil {
		t.Errorf("session after 11h: %v", err)
	}
	e.clock.Advance(time.Hour)
	_, err = e.svc.Authenticate(ctx, a.Admin.cred)
	wantCode(t, err, keyward.EUnauthenticated)
}

// TestAuthenticateReportsUse: a key that authenticates counts as used.
func TestAuthenticateReportsUse(t *testing.T) {
	e := mustService(t)
	a := mustTenant(t, e, "Acme")
	a.AdminKey.p(t)
	a.Admin.p(t)
	if diff := cmp.Diff([]string{a.KeyID}, e.usedKeys()); diff != "" {
		t.Errorf("keys reported used (-want +got):\n%s", diff)
	}
}

func TestLoginAndLogout(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	a := mustTenant(t, e, "Acme")
	b := mustTenant(t, e, "Globex")
	mustUser(t, e, a.Admin, keyward.UserInput{Email: "svc@acme.example", Kind: keyward.KindSystem})
	if _, err := e.svc.CreateUser(context.Background(), a.Admin.p(t), keyward.UserInput{Email: "nopass@acme.example", Name: "No Password"}); err != nil {
		t.Fatal(err)
	}

	wrong := []struct{ name, email, password string }{
		{"wrong password", "admin@acme.example", testPassword + "!"},
		{"wrong email", "nobody@acme.example", testPassword},
		{"empty password", "admin@acme.example", ""},
		{"empty email", "", testPassword},
		{"system user", "svc@acme.example", testPassword},
		{"person without a password", "nopass@acme.example", testPassword},
		{"wrong password, long enough", "admin@acme.example", "wrong but long enough"},
		{"too long password", "admin@acme.example", strings.Repeat("x", 2000)},
	}
	var first error
	for _, c := range wrong {
		_, err := e.svc.Login(ctx, c.email, c.password, "")
		wantCode(t, err, keyward.EUnauthenticated)
		if first == nil {
			first = err
		} else if err != nil && err.Error() != first.Error() {
			t.Errorf("%s: error %q differs from %q: the answer tells wrong email from wrong password", c.name, err, first)
		}
	}
	// The tenant filter picks the tenant: the right password in the wrong tenant fails.
	_, err := e.svc.Login(ctx, "admin@acme.example", testPassword, b.ID)
	wantCode(t, err, keyward.EUnauthenticated)

	// Email is case-insensitive.
	res, err := e.svc.Login(ctx, "Admin@ACME.example", testPassword, "")
	if err != nil {
		t.Fatalf("Login with another case: %v", err)
	}
	e.remember(res.Token)
	if !strings.HasPrefix(res.Token, "kwsess_") || !res.ExpiresAt.Equal(t0.Add(12*time.Hour)) || res.User.Email != "admin@acme.example" {
		t.Errorf("Login = token %.10s…, expires %v, user %s", res.Token, res.ExpiresAt, res.User.Email)
	}
	s := &caller{e: e, name: "session", cred: res.Token}
	p := s.p(t)
	if p.SessionID == "" || p.Key != nil || p.User.ID != a.Admin.userID || p.Tenant.ID != a.ID {
		t.Errorf("session principal = %+v", p)
	}
	if err := e.svc.Logout(ctx, p); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	_, err = e.svc.Authenticate(ctx, res.Token)
	wantCode(t, err, keyward.EUnauthenticated)
	// Another session of the same user goes on.
	if _, err := e.svc.Authenticate(ctx, a.Admin.cred); err != nil {
		t.Errorf("the other session after logout: %v", err)
	}
	// A key is not a session.
	wantCode(t, e.svc.Logout(ctx, a.AdminKey.p(t)), keyward.EInvalid)

	evs := allEvents(t, e, a.ID, keyward.EventFilter{Action: keyward.ActionAuthFailed})
	if len(evs) == 0 {
		t.Error("failed logins wrote no auth.failed event")
	}
	for _, ev := range evs {
		scanForSecrets(t, e, "auth.failed event", dump(ev)+fmt.Sprint(ev.Details))
		for _, v := range ev.Details {
			if s, _ := v.(string); strings.Contains(s, "wrong but long") || strings.Contains(s, testPassword) {
				t.Errorf("auth.failed event holds the tried password: %v", ev.Details)
			}
		}
	}
	if evs := allEvents(t, e, a.ID, keyward.EventFilter{Action: keyward.ActionSessionCreated}); len(evs) < 2 {
		t.Errorf("%d session.created events, want one per login", len(evs))
	}
}

// TestRightsReadAtEveryRequest: a role change, a user deletion or a revocation
// takes effect at once on sessions and keys already in use.
func TestRightsReadAtEveryRequest(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	a := mustTenant(t, e, "Acme")
	boss := mustPerson(t, e, a.Admin, "boss@acme.example", true, keyward.RoleTenantAdmin, keyward.RoleDeveloper)
	bossKey := mustKeyCaller(t, e, boss, "boss key", keyward.KeyRoleAdmin)
	for _, c := range []*caller{boss, bossKey} {
		if _, err := e.svc.ListUsers(ctx, c.p(t), keyward.UserQuery{}); err != nil {
			t.Fatalf("%s as admin: %v", c.name, err)
		}
	}
	if _, err := e.svc.UpdateUser(ctx, a.Admin.p(t), boss.userID, keyward.UserPatch{Roles: &[]string{keyward.RoleDeveloper}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*caller{boss, bossKey} {
		p := c.p(t)
		_, err := e.svc.ListUsers(ctx, p, keyward.UserQuery{})
		wantCode(t, err, PD)
		_, err = e.svc.GetKey(ctx, p, a.KeyID)
		wantCode(t, err, NF)
		_, err = e.svc.UpdateSettings(ctx, p, keyward.SettingsPatch{ExpiryNoticeDays: ptr(1)})
		wantCode(t, err, PD)
	}
	// Losing developer stops key creation through the existing session and key.
	if _, err := e.svc.UpdateUser(ctx, a.Admin.p(t), boss.userID, keyward.UserPatch{Roles: &[]string{}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*caller{boss, bossKey} {
		_, _, err := e.svc.CreateKey(ctx, c.p(t), keyward.KeyInput{Name: "x"})
		wantCode(t, err, DR)
	}
	// Losing the license too.
	if _, err := e.svc.UpdateUser(ctx, a.Admin.p(t), boss.userID, keyward.UserPatch{Roles: &[]string{keyward.RoleDeveloper}, Licensed: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.svc.CreateKey(ctx, boss.p(t), keyward.KeyInput{Name: "x"})
	wantCode(t, err, LR)

	// A revoked key stops at once; so does everything of a deleted user.
	if _, err := e.svc.RevokeKey(ctx, a.Admin.p(t), bossKey.p(t).Key.ID, nil); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Authenticate(ctx, bossKey.cred)
	wantCode(t, err, keyward.EUnauthenticated)
	dev := mustPerson(t, e, a.Admin, "dev@acme.example", true, keyward.RoleDeveloper)
	devKey := mustKeyCaller(t, e, dev, "dev key", keyward.KeyRoleAdmin)
	if err := e.svc.DeleteUser(ctx, a.Admin.p(t), dev.userID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*caller{dev, devKey} {
		_, err := e.svc.Authenticate(ctx, c.cred)
		wantCode(t, err, keyward.EUnauthenticated)
	}
}

// TestReadonlyKeyOnlyReads: a readonly key of an administrator reads
// everything its owner may read and changes nothing.
func TestReadonlyKeyOnlyReads(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	a := mustTenant(t, e, "Acme")
	ro := mustKeyCaller(t, e, a.Admin, "ro", keyward.KeyRoleReadonly)
	p := ro.p(t)
	if _, err := e.svc.GetKey(ctx, p, a.KeyID); err != nil {
		t.Errorf("GetKey: %v", err)
	}
	if _, err := e.svc.ListUsers(ctx, p, keyward.UserQuery{}); err != nil {
		t.Errorf("ListUsers: %v", err)
	}
	if _, err := e.svc.ListEvents(ctx, p, keyward.EventQuery{}); err != nil {
		t.Errorf("ListEvents: %v", err)
	}
	e.clock.Advance(time.Second)
	at := e.clock.Now()
	for name, err := range map[string]error{
		"UpdateSettings": func() error { _, err := e.svc.UpdateSettings(ctx, p, keyward.SettingsPatch{}); return err }(),
		"RevokeKey":      func() error { _, err := e.svc.RevokeKey(ctx, p, p.Key.ID, nil); return err }(),
		"DeactivateKey":  func() error { _, err := e.svc.DeactivateKey(ctx, p, p.Key.ID); return err }(),
		"BulkRevoke":     func() error { _, err := e.svc.BulkRevoke(ctx, p, keyward.BulkRevokeInput{All: true}); return err }(),
		"UpdateUser": func() error {
			_, err := e.svc.UpdateUser(ctx, p, p.User.ID, keyward.UserPatch{Name: ptr("x")})
			return err
		}(),
		"DeleteKey":  e.svc.DeleteKey(ctx, p, p.Key.ID),
		"DeleteUser": e.svc.DeleteUser(ctx, p, "usr_x"),
		"CreateUser": func() error {
			_, err := e.svc.CreateUser(ctx, p, keyward.UserInput{Email: "x@acme.example", Name: "x"})
			return err
		}(),
		"RotateKey": func() error { _, _, err := e.svc.RotateKey(ctx, p, p.Key.ID, nil); return err }(),
	} {
		if keyward.ErrorCode(err) != PD {
			t.Errorf("%s through a readonly key: %v, want %s", name, err, PD)
		}
	}
	if evs := eventsSince(t, e, a.ID, at); len(evs) != 0 {
		t.Errorf("refused writes left %d events", len(evs))
	}
	if _, err := e.svc.Authenticate(ctx, ro.cred); err != nil {
		t.Errorf("the readonly key after its refused self-revocation: %v", err)
	}
}

// TestSecretNeverLeaks: after a life of keys (create, rotate, revoke, bulk,
// delete, errors), no Key read back, event, error message or database file
// byte holds a secret or a session token.
func TestSecretNeverLeaks(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	a := mustTenant(t, e, "Acme")
	svc := e.svc
	p := a.Admin.p(t)
	sys := mustUser(t, e, a.Admin, keyward.UserInput{Email: "svc@acme.example", Kind: keyward.KindSystem})
	var keys []*keyward.Key
	var secrets []string
	for i := range 4 {
		k, s := mustKey(t, e, a.Admin, keyward.KeyInput{Name: fmt.Sprintf("k%d", i), Scopes: []string{"a"}, Meta: []byte(`{"x":1}`)})
		keys, secrets = append(keys, k), append(secrets, s)
	}
	sk, ss := mustKey(t, e, a.Admin, keyward.KeyInput{Name: "sys", OwnerID: sys.ID})
	keys, secrets = append(keys, sk), append(secrets, ss)
	rk, rs, err := svc.RotateKey(ctx, p, keys[0].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.remember(rs)
	keys = append(keys, rk)
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, err = svc.RevokeKey(ctx, p, keys[1].ID, ptr("leak test"))
	note(err)
	_, err = svc.RevokeKey(ctx, p, keys[1].ID, nil) // not_revocable
	note(err)
	_, err = svc.DeactivateKey(ctx, p, keys[2].ID)
	note(err)
	_, err = svc.ReactivateKey(ctx, p, keys[3].ID) // conflict
	note(err)
	note(svc.DeleteKey(ctx, p, keys[3].ID))
	_, err = svc.BulkRevoke(ctx, p, keyward.BulkRevokeInput{IDs: []string{keys[2].ID, keys[1].ID, "key_nope", secrets[0]}})
	note(err)
	_, err = svc.BulkRevoke(ctx, p, keyward.BulkRevokeInput{Type: keyward.KindSystem})
	note(err)
	// Secrets presented in the wrong places come back in no message.
	for _, s := range secrets {
		_, err := svc.GetKey(ctx, p, s)
		note(err)
		note(svc.DeleteKey(ctx, p, s))
		_, _, err = svc.CreateKey(ctx, p, keyward.KeyInput{Name: s, OwnerID: s})
		note(err)
		_, _, err = svc.CreateKey(ctx, p, keyward.KeyInput{Name: "x", Scopes: []string{s + " "}})
		note(err)
		_, err = svc.Authenticate(ctx, s+"x")
		note(err)
		_, err = svc.Login(ctx, "admin@acme.example", s, "")
		note(err)
		_, err = svc.Login(ctx, s, testPassword, "")
		note(err)
		_, err = svc.ListKeys(ctx, p, keyward.KeyQuery{PageToken: s})
		note(err)
		_, err = svc.ListEvents(ctx, p, keyward.EventQuery{KeyID: s})
		note(err)
		res, err := svc.Verify(ctx, keyward.VerifyInput{Key: s})
		note(err)
		scanForSecrets(t, e, "VerifyResult", dump(res)+dump(res.Key))
	}
	if len(errs) < 10 {
		t.Fatalf("only %d errors to scan", len(errs))
	}
	for _, err := range errs {
		scanForSecrets(t, e, "error", err.Error()+keyward.ErrorMessage(err))
	}
	page, err := svc.ListKeys(ctx, p, keyward.KeyQuery{PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range page.Keys {
		scanForSecrets(t, e, "listed key", dump(*k)+string(k.Meta))
		got, err := svc.GetKey(ctx, p, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		scanForSecrets(t, e, "key", dump(*got))
		if len(k.Start) != len("kw_")+keyward.SecretStartLen {
			t.Errorf("start %q: want the prefix and %d characters", k.Start, keyward.SecretStartLen)
		}
	}
	for _, ev := range allEvents(t, e, a.ID, keyward.EventFilter{}) {
		scanForSecrets(t, e, "event "+ev.Action, dump(*ev)+fmt.Sprint(ev.Details))
	}
	// The database files themselves never hold a secret or a token.
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(e.db.Path()), "*"))
	if len(matches) == 0 {
		t.Fatal("no database files to scan")
	}
	for _, f := range matches {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		scanForSecrets(t, e, "database file "+filepath.Base(f), string(b))
	}
}

// TestEventsOfEveryMutation: each change writes its event, with the actor,
// the target, the request's address and agent, and what changed.
func TestEventsOfEveryMutation(t *testing.T) {
	e := mustService(t)
	a := mustTenant(t, e, "Acme")
	svc := e.svc
	ri := keyward.RequestInfo{IP: "203.0.113.7", UserAgent: "keyward-test/1"}
	ctx := keyward.WithRequestInfo(context.Background(), ri)
	admin := a.Admin.p(t)
	adminRef := keyward.Ref{Type: keyward.ActorUser, ID: admin.User.ID, Name: admin.User.Name}
	keyActor := a.AdminKey.p(t)
	keyActorRef := keyward.Ref{Type: keyward.ActorKey, ID: a.KeyID, Name: "bootstrap"}
	uid := admin.User.ID
	system := keyward.Ref{Type: keyward.ActorSystem, ID: "system", Name: "keyward"}
	mustSettings(t, e, a.Admin, keyward.SettingsPatch{MaxExpirationDays: keyward.OptionalInt{Set: true, Value: ptr(30)}})
	in30 := func() time.Time { return e.clock.Now().AddDate(0, 0, 30) }

	var k, k2 *keyward.Key
	var dev *keyward.User
	var sys *keyward.User
	keyRef := func(k *keyward.Key) keyward.Ref { return keyward.Ref{Type: keyward.TargetKey, ID: k.ID, Name: k.Name} }
	userRef := func(u *keyward.User) keyward.Ref {
		return keyward.Ref{Type: keyward.TargetUser, ID: u.ID, Name: u.Name}
	}
	steps := []struct {
		name string
		do   func(t *testing.T) error
		want func() []seenEvent // newest first
	}{
		{"create key", func(t *testing.T) (err error) {
			k, _, err = svc.CreateKey(ctx, admin, keyward.KeyInput{Name: "first", Role: keyward.KeyRoleAdmin})
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionKeyCreated, Actor: adminRef, ActorUserID: uid, Target: keyRef(k), TargetOwnerID: uid,
				Details: map[string]any{"role": "admin", "owner_id": uid, "expires_at": in30()}}}
		}},
		{"create key through a key", func(t *testing.T) (err error) {
			k2, _, err = svc.CreateKey(ctx, keyActor, keyward.KeyInput{Name: "second"})
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionKeyCreated, Actor: keyActorRef, ActorUserID: uid, Target: keyRef(k2), TargetOwnerID: uid,
				Details: map[string]any{"role": "readonly", "owner_id": uid, "expires_at": in30()}}}
		}},
		{"rename key", func(t *testing.T) (err error) {
			k, err = svc.UpdateKey(ctx, admin, k.ID, keyward.KeyPatch{Name: ptr("renamed"), Description: ptr("d")})
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionKeyUpdated, Actor: adminRef, ActorUserID: uid, Target: keyRef(k), TargetOwnerID: uid,
				Details: map[string]any{"name": map[string]any{"from": "first", "to": "renamed"}, "description": map[string]any{"from": "", "to": "d"}}}}
		}},
		{"deactivate key", func(t *testing.T) (err error) {
			_, err = svc.DeactivateKey(ctx, admin, k.ID)
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionKeyDeactivated, Actor: adminRef, ActorUserID: uid, Target: keyRef(k), TargetOwnerID: uid, Details: map[string]any{}}}
		}},
		{"reactivate key", func(t *testing.T) (err error) {
			_, err = svc.ReactivateKey(ctx, admin, k.ID)
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionKeyReactivated, Actor: adminRef, ActorUserID: uid, Target: keyRef(k), TargetOwnerID: uid, Details: map[string]any{}}}
		}},
		{"rotate key", func(t *testing.T) (err error) {
			k2, _, err = svc.RotateKey(ctx, admin, k.ID, ptr(time.Hour))
			return err
		}, func() []seenEvent {
			now := e.clock.Now()
			// Both events share the time; newest first is then by ID.
			evs := []seenEvent{
				{Action: keyward.ActionKeyRotated, Actor: adminRef, ActorUserID: uid, Target: keyRef(k), TargetOwnerID: uid,
					Details: map[string]any{"new_key_id": k2.ID, "grace_period_seconds": 3600, "expires_at": now.Add(time.Hour)}},
				{Action: keyward.ActionKeyCreated, Actor: adminRef, ActorUserID: uid, Target: keyRef(k2), TargetOwnerID: uid,
					Details: map[string]any{"role": "admin", "owner_id": uid, "expires_at": in30(), "rotated_from": k.ID}},
			}
			return evs
		}},
		{"revoke key", func(t *testing.T) (err error) {
			_, err = svc.RevokeKey(ctx, admin, k2.ID, ptr("compromised"))
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionKeyRevoked, Actor: adminRef, ActorUserID: uid, Target: keyRef(k2), TargetOwnerID: uid,
				Details: map[string]any{"reason": "compromised"}}}
		}},
		{"delete key", func(t *testing.T) error { return svc.DeleteKey(ctx, admin, k2.ID) }, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionKeyDeleted, Actor: adminRef, ActorUserID: uid, Target: keyRef(k2), TargetOwnerID: uid,
				Details: map[string]any{"status": "revoked"}}}
		}},
		{"expiry sweep", func(t *testing.T) error {
			e.clock.Advance(2 * time.Hour) // the rotated key's grace ends
			n, err := svc.SweepExpired(ctx, 100)
			if n != 1 {
				t.Errorf("SweepExpired = %d, want 1", n)
			}
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionKeyExpired, Actor: system, Target: keyRef(k), TargetOwnerID: uid,
				Details: map[string]any{"expires_at": anything}, IP: ri.IP, UserAgent: ri.UserAgent}}
		}},
		{"create user", func(t *testing.T) (err error) {
			dev, err = svc.CreateUser(ctx, admin, keyward.UserInput{Email: "dev@acme.example", Name: "Dev", Roles: []string{keyward.RoleDeveloper}, Password: ptr(testPassword)})
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionUserCreated, Actor: adminRef, ActorUserID: uid, Target: userRef(dev), TargetOwnerID: dev.ID,
				Details: map[string]any{"email": "dev@acme.example", "kind": "user", "roles": []string{"developer"}, "licensed": true}}}
		}},
		{"create system user", func(t *testing.T) (err error) {
			sys, err = svc.CreateUser(ctx, admin, keyward.UserInput{Email: "svc@acme.example", Name: "Svc", Kind: keyward.KindSystem, Licensed: ptr(false)})
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionUserCreated, Actor: adminRef, ActorUserID: uid, Target: userRef(sys), TargetOwnerID: sys.ID,
				Details: map[string]any{"email": "svc@acme.example", "kind": "system", "roles": []string{}, "licensed": false}}}
		}},
		{"change user", func(t *testing.T) (err error) {
			dev, err = svc.UpdateUser(ctx, admin, dev.ID, keyward.UserPatch{Name: ptr("Developer"), Roles: &[]string{keyward.RoleTenantAdmin}, Licensed: ptr(false), Password: ptr("another long password")})
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionUserUpdated, Actor: adminRef, ActorUserID: uid, Target: userRef(dev), TargetOwnerID: dev.ID,
				Details: map[string]any{"name": map[string]any{"from": "Dev", "to": "Developer"},
					"roles":    map[string]any{"from": []string{"developer"}, "to": []string{"tenant_admin"}},
					"licensed": map[string]any{"from": true, "to": false}, "password": "changed"}}}
		}},
		{"delete user with keys", func(t *testing.T) (err error) {
			k, _ = mustKey(t, e, a.Admin, keyward.KeyInput{Name: "svc key", OwnerID: sys.ID})
			e.clock.Advance(time.Second)
			return svc.DeleteUser(ctx, admin, sys.ID)
		}, func() []seenEvent {
			return []seenEvent{
				{Action: keyward.ActionUserDeleted, Actor: adminRef, ActorUserID: uid, Target: userRef(sys), TargetOwnerID: sys.ID,
					Details: map[string]any{"email": "svc@acme.example", "keys_deleted": 1}},
				{Action: keyward.ActionKeyDeleted, Actor: adminRef, ActorUserID: uid, Target: keyRef(k), TargetOwnerID: sys.ID,
					Details: map[string]any{"status": "active", "reason": "owner deleted"}},
			}
		}},
		{"change settings", func(t *testing.T) (err error) {
			_, err = svc.UpdateSettings(ctx, admin, keyward.SettingsPatch{APIKeysEnabled: ptr(false),
				MaxExpirationDays: keyward.OptionalInt{Set: true}, KeyPrefix: ptr("acme")})
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionSettingsUpdated, Actor: adminRef, ActorUserID: uid,
				Target: keyward.Ref{Type: keyward.TargetSettings, ID: a.ID, Name: "Acme"},
				Details: map[string]any{"api_keys_enabled": map[string]any{"from": true, "to": false},
					"max_expiration_days": map[string]any{"from": 30, "to": nil},
					"key_prefix":          map[string]any{"from": "kw", "to": "acme"}}}}
		}},
		{"bulk revoke", func(t *testing.T) error {
			mustSettings(t, e, a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(true)})
			k, _ = mustKey(t, e, a.Admin, keyward.KeyInput{Name: "bulk"})
			e.clock.Advance(time.Second)
			_, err := svc.BulkRevoke(ctx, admin, keyward.BulkRevokeInput{IDs: []string{k.ID}, Reason: ptr("cleanup")})
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionKeyRevoked, Actor: adminRef, ActorUserID: uid, Target: keyRef(k), TargetOwnerID: uid,
				Details: map[string]any{"bulk": true, "reason": "cleanup"}}}
		}},
		{"log in", func(t *testing.T) error {
			res, err := svc.Login(ctx, "admin@acme.example", testPassword, "")
			if err == nil {
				e.remember(res.Token)
			}
			return err
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionSessionCreated, Actor: adminRef, ActorUserID: uid,
				Target: keyward.Ref{Type: keyward.TargetUser, ID: uid, Name: admin.User.Name}, TargetOwnerID: uid,
				Details: map[string]any{"session_id": anything, "expires_at": e.clock.Now().Add(12 * time.Hour)}}}
		}},
		{"failed login", func(t *testing.T) error {
			_, err := svc.Login(ctx, "admin@acme.example", "not the password", "")
			if keyward.ErrorCode(err) != keyward.EUnauthenticated {
				t.Errorf("failed login: %v", err)
			}
			return nil
		}, func() []seenEvent {
			return []seenEvent{{Action: keyward.ActionAuthFailed, Actor: adminRef, ActorUserID: uid,
				Target: keyward.Ref{Type: keyward.TargetUser, ID: uid, Name: admin.User.Name}, TargetOwnerID: uid,
				Details: map[string]any{"reason": anything}}}
		}},
	}
	for _, s := range steps {
		e.clock.Advance(time.Second)
		if err := s.do(t); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := s.want()
		for i := range want {
			if want[i].IP == "" {
				want[i].IP, want[i].UserAgent = ri.IP, ri.UserAgent
			}
		}
		got := eventsSince(t, e, a.ID, e.clock.Now()) // a step's own setup happens a second earlier
		if len(got) == 2 && len(want) == 2 && got[0].Action != want[0].Action {
			got[0], got[1] = got[1], got[0] // same time: the store orders by random ID
		}
		if diff := diffEvents(t, want, got); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", s.name, diff)
		}
		for _, ev := range got {
			if !ev.Time.Equal(e.clock.Now()) || ev.TenantID != a.ID || !strings.HasPrefix(ev.ID, keyward.PrefixEvent) {
				t.Errorf("%s: event %s at %v in %s", s.name, ev.ID, ev.Time, ev.TenantID)
			}
		}
	}
	// The bootstrap wrote tenant.created, user.created and key.created as the system.
	var actions []string
	for _, ev := range allEvents(t, e, a.ID, keyward.EventFilter{}) {
		if ev.Actor == system && ev.Action != keyward.ActionKeyExpired {
			if !ev.Time.Equal(t0) {
				t.Errorf("system event %s at %v", ev.Action, ev.Time)
			}
			actions = append(actions, ev.Action)
		}
	}
	slices.Sort(actions)
	if diff := cmp.Diff([]string{keyward.ActionKeyCreated, keyward.ActionTenantCreated, keyward.ActionUserCreated}, actions); diff != "" {
		t.Errorf("bootstrap events (-want +got):\n%s", diff)
	}
}

// TestNoChangeWritesNoEvent: a settings patch that changes nothing is no mutation.
func TestNoChangeWritesNoEvent(t *testing.T) {
	e := mustService(t)
	a := mustTenant(t, e, "Acme")
	e.clock.Advance(time.Second)
	at := e.clock.Now()
	mustSettings(t, e, a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(true), MaxKeysPerUser: ptr(5)})
	if evs := eventsSince(t, e, a.ID, at); len(evs) != 0 {
		t.Errorf("a patch without change wrote %d events", len(evs))
	}
}
