package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/pressly/goose/v3"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/storetest"
)

// openMarking opens a store that writes every set revocation as a mark
// (markFrom 1) and leaves the marks pending until a read of the audit trail,
// or the test, settles them.
func openMarking(t *testing.T, path string) *DB {
	t.Helper()
	db, err := open(context.Background(), path, options{markFrom: 1, settlerOff: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mustOpenHere opens a store that revokes sets as it would in production.
func mustOpenHere(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func hasher(t *testing.T) *keyward.Hasher {
	t.Helper()
	h, err := keyward.NewHasher([]byte("a pepper of at least thirty-two bytes, for tests"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestStoreWithMarks is the conformance suite with every set revocation a
// pending mark: whatever a test reads after it, it must read what a
// revocation row by row would have left.
func TestStoreWithMarks(t *testing.T) {
	storetest.RunWith(t, storetest.Config{OwnRevocationEventIDs: true}, func(t *testing.T) keyward.Store {
		return openMarking(t, filepath.Join(t.TempDir(), "keyward.db"))
	})
}

// twin is one of two stores that TestMarksAgreeWithRowByRow drives through
// the same operations: one revokes sets by marks, the other row by row.
type twin struct {
	db      *DB
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

var keyIDs = regexp.MustCompile(`key_[0-9A-Za-z]{22}`)

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

func (w *twin) events(t *testing.T, p *keyward.Principal, names map[string]string) []eventState {
	t.Helper()
	var out []eventState
	token := ""
	for {
		page, err := w.svc.ListEvents(context.Background(), p, keyward.EventQuery{PageSize: 100, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			d, _ := json.Marshal(e.Details)
			d = keyIDs.ReplaceAll(d, []byte("key_…")) // IDs differ by chance
			target := e.Target.Type + ":" + e.Target.Name
			if e.Target.Type != keyward.TargetKey {
				target += ":" + e.Target.ID
			}
			out = append(out, eventState{Time: e.Time, Action: e.Action, Actor: e.Actor.ID, Target: target,
				Owner: names[e.TargetOwnerID], Details: string(d)})
		}
		if token = page.NextPageToken; token == "" {
			slices.SortFunc(out, func(a, b eventState) int {
				return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.Action, b.Action),
					strings.Compare(a.Target, b.Target), strings.Compare(a.Details, b.Details))
			})
			return out
		}
	}
}

// TestMarksAgreeWithRowByRow drives two stores through the same random
// operations, one revoking every set by a pending mark (settled a random
// chunk at a time, or when the audit trail is read), the other row by row,
// and compares after each step everything a reader can see: every key under
// every status filter and several sorts, each verification's answer, each
// operation's outcome, and the whole audit trail.
func TestMarksAgreeWithRowByRow(t *testing.T) {
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
	for i := range twins {
		var db *DB
		if i == 0 {
			db = openMarking(t, filepath.Join(t.TempDir(), "marks.db"))
		} else {
			db = mustOpenHere(t, filepath.Join(t.TempDir(), "rows.db"))
		}
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
			svc: keyward.NewService(db, hasher(t), keyward.Options{Now: clock,
				Rand: mrand.NewChaCha8([32]byte{byte(i)})})}
	}
	marks := twins[0]

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
	steps := 250
	if raceDetector {
		steps = 80
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
				in.ExpiresAt = ptrTo(now.Add(time.Duration(1+r.IntN(40)) * time.Minute))
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
					_, err = w.svc.RevokeKey(ctx, admin, id, ptrTo("one"))
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
			in := keyward.BulkRevokeInput{Reason: ptrTo(fmt.Sprintf("bulk %d", step))}
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
		case x < 92:
			op = "settle a chunk"
			n := 1 + r.IntN(3)
			err := marks.db.Update(ctx, func(ktx keyward.Tx) error {
				_, err := ktx.(*tx).settleChunk(ctx, tn.ID, n)
				return err
			})
			got = [2]string{outcome(true, err), outcome(true, nil)}
		default:
			op = "read the audit trail"
			a, b := twins[0].events(t, admin, names), twins[1].events(t, admin, names)
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
	a, b := twins[0].events(t, admin, names), twins[1].events(t, admin, names)
	if diff := gocmp.Diff(b, a); diff != "" {
		t.Fatalf("the audit trails differ at the end (-rows +marks):\n%s", diff)
	}
	var pending int
	if err := marks.db.reader.QueryRow(`SELECT count(*) FROM key_revocations`).Scan(&pending); err != nil || pending != 0 {
		t.Fatalf("%d marks pending after the trail was read (%v)", pending, err)
	}
}

// markFixture is a tenant with keys in a store that writes every set
// revocation as a pending mark.
type markFixture struct {
	*searchFixture
	tn    *keyward.Tenant
	owner *keyward.User
	keys  []*keyward.Key
}

func newMarkFixture(t *testing.T, db *DB, path string, n int) *markFixture {
	t.Helper()
	f := &markFixture{searchFixture: &searchFixture{t: t, ctx: context.Background(), db: db, path: path,
		now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}}
	f.tn = f.tenant("Acme")
	f.owner = f.user(db, f.tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	for i := range n {
		f.keys = append(f.keys, f.key(db, f.owner, fmt.Sprintf("key %d", i), f.now))
	}
	return f
}

// revokeAll revokes every key of the tenant in db, with an event each.
func (f *markFixture) revokeAll(db *DB) {
	f.t.Helper()
	f.update(db, func(tx keyward.Tx) error {
		_, err := tx.RevokeKeys(f.ctx, keyward.RevokeSpec{TenantID: f.tn.ID, At: f.now, By: f.owner.ID,
			Event: &keyward.Event{Time: f.now, TenantID: f.tn.ID, Action: keyward.ActionKeyRevoked,
				Actor: keyward.Ref{Type: keyward.ActorUser, ID: f.owner.ID, Name: "Ada"}, ActorUserID: f.owner.ID,
				Target: keyward.Ref{Type: keyward.TargetKey}, Details: map[string]any{"bulk": true}},
			NewID: func() (string, error) { return f.id(keyward.PrefixEvent), nil }})
		return err
	})
}

// rawFile opens the file with plain database/sql, as another program would.
func rawFile(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rawCount counts in the file itself, past the store's reads (which
// would settle marks first).
func rawCount(t *testing.T, path, query string) int {
	t.Helper()
	var n int
	if err := rawFile(t, path).QueryRow(query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMarksSurviveRestart: a mark that a stopped process left is settled by
// the next Open, without any read asking for it.
func TestMarksSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := openMarking(t, path)
	f := newMarkFixture(t, db, path, 5)
	f.revokeAll(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM key_revocations`); n != 1 {
		t.Fatalf("%d marks in the file after Close, want the pending one", n)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM keys WHERE revoked_at IS NULL`); n != 5 {
		t.Fatalf("%d keys unrevoked in their rows, want all 5 (the mark pending)", n)
	}

	db = mustOpenHere(t, path) // its settler settles what it finds
	deadline := time.Now().Add(10 * time.Second)
	for rawCount(t, path, `SELECT count(*) FROM key_revocations`) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the mark was not settled within 10 s of Open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM keys WHERE revoked_at IS NULL`); n != 0 {
		t.Errorf("%d keys unrevoked in their rows after settling", n)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM events WHERE action = 'key.revoked'`); n != 5 {
		t.Errorf("%d key.revoked events after settling, want 5", n)
	}
	if n := rawCount(t, path, `SELECT n FROM event_totals`); n != 5 {
		t.Errorf("event total %d after settling, want 5", n)
	}
}

// TestMarksSeenByAnotherProcess: a second Open of the file reads the keys
// of a mark that the first wrote revoked, before anything settles it; its
// settler is held off, so that the rows stay as they were.
func TestMarksSeenByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := openMarking(t, path)
	f := newMarkFixture(t, db, path, 3)
	other := openMarking(t, path) // whose settler is held off too
	f.revokeAll(db)
	for _, k := range f.keys {
		got, _, err := other.KeyForVerify(f.ctx, k.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status(f.now) != keyward.StatusRevoked || got.RevokedAt == nil || !got.RevokedAt.Equal(f.now) ||
			got.RevokedBy == nil || *got.RevokedBy != f.owner.ID || !got.UpdatedAt.Equal(f.now) {
			t.Errorf("%s read by the other process: %s, revoked at %v by %v, updated %v; want revoked at %v by %s",
				k.Name, got.Status(f.now), got.RevokedAt, got.RevokedBy, got.UpdatedAt, f.now, f.owner.ID)
		}
	}
	if n := rawCount(t, path, `SELECT count(*) FROM keys WHERE revoked_at IS NULL`); n != 3 {
		t.Fatalf("%d keys unrevoked in their rows, want 3: the reads above did not go through the mark", n)
	}
}

// TestMarkRollsBack: a transaction that fails after writing a mark leaves
// nothing of it.
func TestMarkRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := openMarking(t, path)
	f := newMarkFixture(t, db, path, 3)
	broken := fmt.Errorf("broken")
	err := db.Update(f.ctx, func(tx keyward.Tx) error {
		if _, err := tx.RevokeKeys(f.ctx, keyward.RevokeSpec{TenantID: f.tn.ID, At: f.now}); err != nil {
			return err
		}
		return broken
	})
	if err != broken {
		t.Fatalf("Update: %v, want the fn's error", err)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM key_revocations`); n != 0 {
		t.Errorf("%d marks after a rollback", n)
	}
	for _, k := range f.keys {
		got, _, err := db.KeyForVerify(f.ctx, k.Hash)
		if err != nil || got.RevokedAt != nil {
			t.Errorf("%s after a rolled-back revocation: revoked at %v, %v", k.Name, got.RevokedAt, err)
		}
	}
}

// TestNewKeyAboveMarks: a key created while a mark is pending is not
// covered by it, even where SQLite would give it the rowid of a deleted
// key that the mark counted.
func TestNewKeyAboveMarks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := openMarking(t, path)
	f := newMarkFixture(t, db, path, 3)
	f.revokeAll(db)
	last := f.keys[len(f.keys)-1]
	f.update(db, func(tx keyward.Tx) error { return tx.DeleteKey(f.ctx, f.tn.ID, last.ID) })
	k := f.key(db, f.owner, "after", f.now.Add(time.Minute))
	var rowid, maxRow int
	raw := rawFile(t, path)
	if err := raw.QueryRow(`SELECT rowid FROM keys WHERE id = ?`, k.ID).Scan(&rowid); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`SELECT max_rowid FROM key_revocations`).Scan(&maxRow); err != nil {
		t.Fatal(err)
	}
	if rowid <= maxRow {
		t.Errorf("the new key's rowid %d is not above the mark's %d", rowid, maxRow)
	}
	got, _, err := db.KeyForVerify(f.ctx, k.Hash)
	if err != nil || got.RevokedAt != nil {
		t.Errorf("the key created after the mark: revoked at %v, %v; want unrevoked", got.RevokedAt, err)
	}
	// The deleted key's revocation is in the trail, before its deletion.
	if n := rawCount(t, path, `SELECT count(*) FROM events WHERE action = 'key.revoked' AND target_id = '`+last.ID+`'`); n != 1 {
		t.Errorf("%d key.revoked events of the key deleted while its mark was pending, want 1", n)
	}
}

// TestMarksMigrateDown: taking migration 00007 back writes every pending
// mark's keys and events first, so that undoing the schema undoes no
// revocation.
func TestMarksMigrateDown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := openMarking(t, path)
	f := newMarkFixture(t, db, path, 4)
	f.revokeAll(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw := rawFile(t, path)
	raw.SetMaxOpenConns(1)
	if _, err := raw.Exec(`PRAGMA foreign_keys = ON`); err != nil {
		t.Fatal(err)
	}
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, raw, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(context.Background(), 6); err != nil {
		t.Fatal(err)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM sqlite_master WHERE name = 'key_revocations'`); n != 0 {
		t.Fatal("key_revocations is still there")
	}
	if n := rawCount(t, path, `SELECT count(*) FROM keys WHERE revoked_at IS NULL`); n != 0 {
		t.Errorf("%d keys unrevoked after the migration down", n)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM keys WHERE revoked_by = '`+f.owner.ID+`' AND updated_at = revoked_at`); n != 4 {
		t.Errorf("%d keys revoked by the mark's actor, updated then; want 4", n)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM events WHERE action = 'key.revoked'`); n != 4 {
		t.Errorf("%d key.revoked events after the migration down, want 4", n)
	}
	if n := rawCount(t, path, `SELECT n FROM event_totals`); n != 4 {
		t.Errorf("event total %d after the migration down, want 4", n)
	}
}
