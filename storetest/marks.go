package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward"
)

// twin is one of two stores that MarksAgreeWithRowByRow drives through the
// same operations: one revokes sets by marks, the other row by row.
type twin struct {
	db      keyward.Store
	svc     *keyward.Service
	ids     map[string]string // key name -> key ID
	secrets map[string]string // key name -> secret
}

// keyState is what the test compares of a key: everything a reader sees,
// less what differs between the twins by chance (IDs, digests and secrets
// come from a random stream that the row-by-row revocation reads more of).
type keyState struct {
	Name, Owner, Status, Role  string
	Disabled                   bool
	Created, Updated           time.Time
	Expires, LastUsed, Revoked *time.Time
	RevokedBy, Reason          *string
}

func (w *twin) keys(t *testing.T, tenantID string, now time.Time, sort string, desc bool, status, q string, size int) []keyState {
	t.Helper()
	var out []keyState
	token := ""
	for {
		var page *keyward.KeyPage
		err := w.db.View(context.Background(), func(tx keyward.Tx) (err error) {
			page, err = tx.ListKeys(context.Background(), keyward.KeyFilter{TenantID: tenantID, Sort: sort, Desc: desc,
				Status: status, Q: q, PageSize: size, PageToken: token, Now: now})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			out = append(out, keyState{Name: k.Name, Owner: k.OwnerName, Status: k.Status(now), Role: k.Role,
				Disabled: k.Disabled, Created: k.CreatedAt, Updated: k.UpdatedAt, Expires: k.ExpiresAt,
				LastUsed: k.LastUsedAt, Revoked: k.RevokedAt, RevokedBy: k.RevokedBy, Reason: k.RevokeReason})
		}
		if len(out) > page.Total {
			t.Fatalf("read %d keys of a total of %d", len(out), page.Total)
		}
		if token = page.NextPageToken; token == "" {
			if len(out) != page.Total {
				t.Fatalf("read %d keys, total %d", len(out), page.Total)
			}
			return out
		}
	}
}

var keyIDPattern = regexp.MustCompile(`key_[0-9A-Za-z]{22}`)

func keyNames(l []keyState) []string {
	var out []string
	for _, k := range l {
		out = append(out, k.Name)
	}
	return out
}

// eventState is an event less its ID and, for a key, the key's ID.
type eventState struct {
	Time                         time.Time
	Action, Actor, Target, Owner string
	Details                      string
}

func (w *twin) events(t *testing.T, p *keyward.Principal, names map[string]string, q keyward.EventQuery) []eventState {
	t.Helper()
	var out []eventState
	q.PageSize = 100
	for {
		page, err := w.svc.ListEvents(context.Background(), p, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			d, _ := json.Marshal(e.Details)
			d = keyIDPattern.ReplaceAll(d, []byte("key_…")) // IDs differ by chance
			target := e.Target.Type + ":" + e.Target.Name
			if e.Target.Type != keyward.TargetKey {
				target += ":" + e.Target.ID
			}
			out = append(out, eventState{Time: e.Time, Action: e.Action, Actor: e.Actor.ID, Target: target,
				Owner: names[e.TargetOwnerID], Details: string(d)})
		}
		if q.PageToken = page.NextPageToken; q.PageToken == "" {
			slices.SortFunc(out, func(a, b eventState) int {
				return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.Action, b.Action),
					strings.Compare(a.Target, b.Target), strings.Compare(a.Details, b.Details))
			})
			return out
		}
	}
}

// MarksAgreeWithRowByRow drives two empty stores through the same random
// operations for steps steps: marks revokes every set by a pending mark
// (settle writes up to n keys of a tenant's earliest mark, and a read of the
// audit trail settles the rest), rows revokes them row by row. After each
// step it compares everything a reader can see: every key under every
// status filter, several sorts and searches, each verification's answer,
// each operation's outcome, and the whole audit trail. At the end pending
// must report no mark left.
func MarksAgreeWithRowByRow(t *testing.T, marks, rows keyward.Store, steps int,
	settle func(ctx context.Context, tenantID string, n int) error, pending func() int) {
	ctx := context.Background()
	seed := mrand.Uint64()
	if s := os.Getenv("KEYWARD_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (KEYWARD_TEST_SEED repeats a run)", seed)
	r := mrand.New(mrand.NewPCG(seed, 1))
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	tn := &keyward.Tenant{ID: "ten_twins", Name: "Twins", CreatedAt: now, Settings: keyward.DefaultSettings()}
	tn.Settings.APIKeysEnabled = true
	mkUser := func(id, name, kind string, roles ...string) *keyward.User {
		return &keyward.User{ID: id, TenantID: tn.ID, Email: id + "@example.com", Name: name, Kind: kind,
			Roles: append([]string{}, roles...), Licensed: true, CreatedAt: now, UpdatedAt: now}
	}
	users := []*keyward.User{
		mkUser("usr_ada", "Ada", keyward.KindUser, keyward.RoleTenantAdmin, keyward.RoleDeveloper),
		mkUser("usr_bob", "Bob", keyward.KindUser, keyward.RoleDeveloper),
		mkUser("usr_cy", "Cy", keyward.KindUser, keyward.RoleDeveloper),
		mkUser("usr_billing", "Billing", keyward.KindSystem),
		mkUser("usr_search", "Search", keyward.KindSystem),
	}
	names := map[string]string{}
	for _, u := range users {
		names[u.ID] = u.Name
	}
	admin := &keyward.Principal{Tenant: tn, User: users[0]}

	var twins [2]*twin
	for i, db := range []keyward.Store{marks, rows} {
		err := db.Update(ctx, func(tx keyward.Tx) error {
			if err := tx.CreateTenant(ctx, tn); err != nil {
				return err
			}
			for _, u := range users {
				if err := tx.CreateUser(ctx, u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		twins[i] = &twin{db: db, ids: map[string]string{}, secrets: map[string]string{},
			svc: keyward.NewService(db, testHasher(t), keyward.Options{Now: clock,
				Rand: mrand.NewChaCha8([32]byte{byte(i)})})}
	}

	live := func() []*keyward.User { // users not deleted
		return slices.DeleteFunc(slices.Clone(users), func(u *keyward.User) bool { return u == nil })
	}
	principal := func(u *keyward.User) *keyward.Principal {
		if u.Kind == keyward.KindSystem {
			return admin
		}
		return &keyward.Principal{Tenant: tn, User: u}
	}
	anyName := func() string { // a key name that may or may not exist
		n := len(twins[1].ids) + 2
		return fmt.Sprintf("key %d", r.IntN(n))
	}
	created := 0
	// outcome is what an operation answered, for comparison.
	outcome := func(res any, err error) string {
		if err != nil {
			return "error " + keyward.ErrorCode(err)
		}
		return fmt.Sprintf("ok %v", res)
	}
	for step := range steps {
		now = now.Add(time.Duration(1+r.IntN(120)) * time.Second)
		var op string
		var got [2]string
		switch x := r.IntN(100); {
		case x < 30:
			u := live()[r.IntN(len(live()))]
			name := fmt.Sprintf("key %d", created)
			created++
			in := keyward.KeyInput{Name: name, OwnerID: u.ID}
			if r.IntN(2) == 0 {
				in.ExpiresAt = new(now.Add(time.Duration(1+r.IntN(40)) * time.Minute))
			}
			op = "create " + name + " for " + u.Name
			for i, w := range twins {
				k, secret, err := w.svc.CreateKey(ctx, principal(u), in)
				if err == nil {
					w.ids[name], w.secrets[name] = k.ID, secret
				}
				got[i] = outcome(err == nil, err)
			}
		case x < 40:
			name := anyName()
			verb := []string{"deactivate", "reactivate", "revoke", "rename", "delete", "rotate"}[r.IntN(6)]
			op = verb + " " + name
			newName := fmt.Sprintf("key %d", created)
			grace := time.Duration(r.IntN(2)) * time.Minute
			for i, w := range twins {
				id := w.ids[name]
				if id == "" {
					id = "key_missing"
				}
				var err error
				switch verb {
				case "deactivate":
					_, err = w.svc.DeactivateKey(ctx, admin, id)
				case "reactivate":
					_, err = w.svc.ReactivateKey(ctx, admin, id)
				case "revoke":
					_, err = w.svc.RevokeKey(ctx, admin, id, new("one"))
				case "rename":
					_, err = w.svc.UpdateKey(ctx, admin, id, keyward.KeyPatch{Name: &newName})
					if err == nil {
						w.ids[newName], w.secrets[newName] = id, w.secrets[name]
						delete(w.ids, name)
					}
				case "delete":
					err = w.svc.DeleteKey(ctx, admin, id)
				case "rotate":
					var k *keyward.Key
					var secret string
					k, secret, err = w.svc.RotateKey(ctx, admin, id, &grace)
					if err == nil {
						w.ids[newName], w.secrets[newName] = k.ID, secret
					}
				}
				got[i] = outcome(err == nil, err)
			}
			if verb == "rename" || verb == "rotate" {
				created++
			}
		case x < 55:
			in := keyward.BulkRevokeInput{Reason: new(fmt.Sprintf("bulk %d", step))}
			switch r.IntN(3) {
			case 0:
				in.All = true
			case 1:
				in.Type = keyward.KindUser
			default:
				in.Type = keyward.KindSystem
			}
			op = fmt.Sprintf("bulk revoke all=%v type=%q", in.All, in.Type)
			for i, w := range twins {
				res, err := w.svc.BulkRevoke(ctx, admin, in)
				got[i] = outcome(res, err)
			}
		case x < 60:
			var names []string
			for range 1 + r.IntN(4) {
				names = append(names, anyName())
			}
			op = fmt.Sprintf("bulk revoke %v", names)
			for i, w := range twins {
				var ids []string
				for _, n := range names {
					ids = append(ids, cmp.Or(w.ids[n], "key_missing"+n))
				}
				res, err := w.svc.BulkRevoke(ctx, admin, keyward.BulkRevokeInput{IDs: ids})
				if err == nil {
					for j := range res.Failed {
						res.Failed[j].ID = "" // differs by chance
					}
				}
				got[i] = outcome(res, err)
			}
		case x < 70:
			name := anyName()
			op = "verify " + name
			for i, w := range twins {
				res, err := w.svc.Verify(ctx, keyward.VerifyInput{Key: cmp.Or(w.secrets[name], "kw_nothing")})
				got[i] = outcome(res.Code, err)
			}
		case x < 75:
			name := anyName()
			op = "touch " + name
			for i, w := range twins {
				err := w.db.Update(ctx, func(tx keyward.Tx) error {
					return tx.TouchKeys(ctx, map[string]time.Time{cmp.Or(w.ids[name], "key_missing"): now})
				})
				got[i] = outcome(true, err)
			}
		case x < 80:
			op = "sweep expired"
			limit := 1 + r.IntN(5)
			for i, w := range twins {
				n, err := w.svc.SweepExpired(ctx, limit)
				got[i] = outcome(n, err)
			}
		case x < 82 && len(live()) > 2:
			j := 1 + r.IntN(len(users)-1)
			if users[j] == nil {
				continue
			}
			op = "delete user " + users[j].Name
			for i, w := range twins {
				got[i] = outcome(true, w.svc.DeleteUser(ctx, admin, users[j].ID))
			}
			users[j] = nil
		case x < 88:
			// A read of the trail through filters: it must show what the
			// rows' trail shows, whether the filters leave the pending marks'
			// events out (the read does not wait) or not (it settles first).
			var q keyward.EventQuery
			q.Action = []string{"", keyward.ActionKeyRevoked, keyward.ActionKeyCreated, keyward.ActionKeyDeleted}[r.IntN(4)]
			q.ActorID = []string{"", "", users[0].ID, "usr_bob"}[r.IntN(4)]
			if r.IntN(3) == 0 {
				q.Since = new(now.Add(-time.Duration(r.IntN(20)) * time.Minute))
			}
			if r.IntN(3) == 0 {
				q.Until = new(now.Add(-time.Duration(r.IntN(20)) * time.Minute))
			}
			key := ""
			if r.IntN(3) == 0 {
				key = anyName()
			}
			p := admin
			if u := live()[r.IntN(len(live()))]; u.Kind == keyward.KindUser && r.IntN(2) == 0 {
				p = &keyward.Principal{Tenant: tn, User: u}
			}
			op = fmt.Sprintf("read the trail as %s: action %q, actor %q, key %q, since %v, until %v",
				p.User.Name, q.Action, q.ActorID, key, q.Since, q.Until)
			var trails [2][]eventState
			for i, w := range twins {
				q := q
				if key != "" {
					q.KeyID = cmp.Or(w.ids[key], "key_missing")
				}
				trails[i] = w.events(t, p, names, q)
			}
			if diff := gocmp.Diff(trails[1], trails[0]); diff != "" {
				t.Fatalf("step %d (%s): the trails differ (-rows +marks):\n%s", step, op, diff)
			}
			continue
		case x < 94:
			op = "settle a chunk"
			n := 1 + r.IntN(3)
			got = [2]string{outcome(true, settle(ctx, tn.ID, n)), outcome(true, nil)}
		default:
			op = "read the audit trail"
			a, b := twins[0].events(t, admin, names, keyward.EventQuery{}), twins[1].events(t, admin, names, keyward.EventQuery{})
			if diff := gocmp.Diff(b, a); diff != "" {
				t.Fatalf("step %d (%s): the audit trails differ (-rows +marks):\n%s", step, op, diff)
			}
			continue
		}
		if testing.Verbose() {
			t.Logf("step %d: %s: %s", step, op, got[0])
		}
		if got[0] != got[1] {
			t.Fatalf("step %d (%s): marks answered %s, rows %s", step, op, got[0], got[1])
		}
		for _, v := range []struct {
			sort   string
			desc   bool
			status string
			q      string // searched through the search index (View)
		}{{"name", false, "", ""}, {"updated_at", true, "", ""}, {"status", false, "", ""},
			{"name", false, keyward.StatusActive, ""}, {"name", false, keyward.StatusInactive, ""},
			{"name", false, keyward.StatusRevoked, ""}, {"name", false, keyward.StatusExpired, ""},
			{"name", true, "", "y 1"}, {"updated_at", false, "", " 2"}, {"name", false, keyward.StatusRevoked, "y 3"}} {
			size := 100 // one page: the order is compared by name
			if v.sort == "name" {
				size = 7 // several pages, through page tokens
			}
			a := twins[0].keys(t, tn.ID, now, v.sort, v.desc, v.status, v.q, size)
			b := twins[1].keys(t, tn.ID, now, v.sort, v.desc, v.status, v.q, size)
			if v.sort == "name" { // else ties are broken by IDs, which differ by chance
				if diff := gocmp.Diff(keyNames(b), keyNames(a)); diff != "" {
					t.Fatalf("step %d (%s): the order by name, status %q, q %q differs (-rows +marks):\n%s",
						step, op, v.status, v.q, diff)
				}
			}
			// Keys of one name (a rotation's two) are in ID order: compare
			// the sets.
			for _, l := range [][]keyState{a, b} {
				slices.SortFunc(l, func(x, y keyState) int {
					return cmp.Or(strings.Compare(x.Name, y.Name), x.Created.Compare(y.Created),
						strings.Compare(fmt.Sprint(x), fmt.Sprint(y)))
				})
			}
			if diff := gocmp.Diff(b, a); diff != "" {
				t.Fatalf("step %d (%s): keys sorted by %s, status %q, q %q differ (-rows +marks):\n%s",
					step, op, v.sort, v.status, v.q, diff)
			}
		}
	}
	// At the end both trails agree, and every mark is gone.
	a, b := twins[0].events(t, admin, names, keyward.EventQuery{}), twins[1].events(t, admin, names, keyward.EventQuery{})
	if diff := gocmp.Diff(b, a); diff != "" {
		t.Fatalf("the audit trails differ at the end (-rows +marks):\n%s", diff)
	}
	if n := pending(); n != 0 {
		t.Fatalf("%d marks pending after the trail was read", n)
	}
}

func testHasher(t *testing.T) *keyward.Hasher {
	t.Helper()
	h, err := keyward.NewHasher([]byte("a pepper of at least thirty-two bytes, for tests"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}
