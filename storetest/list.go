package storetest

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward"
)

// foldCompare orders text as the contract sorts it: case-insensitively (the
// suite's text is ASCII), then byte by byte.
func foldCompare(a, b string) int {
	return strings.Compare(asciiLower(a), asciiLower(b))
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func foldContains(s, sub string) bool { return strings.Contains(asciiLower(s), asciiLower(sub)) }

// compareTimes orders optional times, a nil one as nilOrder (-1: before every
// time, +1: after every time).
func compareTimes(a, b *time.Time, nilOrder int) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return nilOrder
	case b == nil:
		return -nilOrder
	}
	return a.Compare(*b)
}

// keyOrder is the reference order of ListKeys: the sort column, then the id,
// both in the same direction.
func keyOrder(sort string, desc bool, at time.Time) func(a, b *keyward.Key) int {
	column := func(a, b *keyward.Key) int {
		switch sort {
		case "name":
			return foldCompare(a.Name, b.Name)
		case "id":
			return foldCompare(a.ID, b.ID)
		case "owner":
			return foldCompare(a.OwnerName, b.OwnerName)
		case "type":
			return foldCompare(a.Type, b.Type)
		case "role":
			return foldCompare(a.Role, b.Role)
		case "status":
			return strings.Compare(a.Status(at), b.Status(at))
		case "created_at":
			return a.CreatedAt.Compare(b.CreatedAt)
		case "updated_at":
			return a.UpdatedAt.Compare(b.UpdatedAt)
		case "expires_at":
			return compareTimes(a.ExpiresAt, b.ExpiresAt, +1) // never expires: after every time
		case "last_used_at":
			return compareTimes(a.LastUsedAt, b.LastUsedAt, -1) // never used: before every time
		}
		panic("unknown sort " + sort)
	}
	return func(a, b *keyward.Key) int {
		c := column(a, b)
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if desc {
			c = -c
		}
		return c
	}
}

func keyIDs(keys []*keyward.Key) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

// listKeyIDs pages through ListKeys with f and returns the ids in the order
// they came, checking the page sizes, the totals and the tokens on the way.
func listKeyIDs(tb testing.TB, s keyward.Store, f keyward.KeyFilter) (ids []string, total int) {
	tb.Helper()
	total = -1
	for page := 0; ; page++ {
		got := mustGet(tb, s, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) {
			return tx.ListKeys(ctx, f)
		})
		if total != -1 && got.Total != total {
			tb.Errorf("ListKeys %+v: total %d on page %d, %d before", f, got.Total, page, total)
		}
		total = got.Total
		if len(got.Keys) > f.PageSize || got.NextPageToken != "" && len(got.Keys) != f.PageSize {
			tb.Errorf("ListKeys %+v: page %d has %d keys (next token %q)", f, page, len(got.Keys), got.NextPageToken)
		}
		ids = append(ids, keyIDs(got.Keys)...)
		if got.NextPageToken == "" {
			return ids, total
		}
		if page > total+1 {
			tb.Fatalf("ListKeys %+v: more pages than keys", f)
		}
		f.PageToken = got.NextPageToken
	}
}

// keyListFixture fills a tenant with keys that differ in every sort column,
// with ties, case variants, NULL times and every status at now, and another
// tenant with a key that matches every query.
func keyListFixture(t *testing.T, s keyward.Store) (tn, other *keyward.Tenant, users map[string]*keyward.User, keys []*keyward.Key) {
	tn = mustTenant(t, s, "Acme")
	other = mustTenant(t, s, "Other")
	users = map[string]*keyward.User{
		"alice": mustUser(t, s, tn.ID, "Alice Archer", "Alice@Example.com", keyward.KindUser),
		"bob":   mustUser(t, s, tn.ID, "bob baker", "bob@example.org", keyward.KindUser),
		"svc":   mustUser(t, s, tn.ID, "Billing Service", "billing@svc.example", keyward.KindSystem),
		// Same name as Alice but for case: a tie in the owner sort.
		"robot": mustUser(t, s, tn.ID, "alice archer", "robot@svc.example", keyward.KindSystem),
	}
	h := time.Hour
	type spec struct {
		name, owner, role string
		created, updated  time.Duration // from now
		expires, lastUsed *time.Duration
		revoked           *time.Duration
		disabled          bool
	}
	d := func(v time.Duration) *time.Duration { return &v }
	specs := []spec{
		{"alpha", "alice", "admin", -5 * h, -5 * h, nil, nil, nil, false},
		{"Alpha", "bob", "readonly", -5 * h, -1 * h, d(24 * h), d(-1 * h), nil, false},
		{"BETA", "svc", "admin", -4 * h, -4 * h, d(0), d(-2 * h), nil, false}, // expires exactly now
		{"beta", "alice", "readonly", -3 * h, -1 * h, d(-1 * h), nil, nil, true},
		{"gamma_1", "bob", "admin", -2 * h, -2 * h, d(1 * h), nil, nil, true},
		{"gamma-1", "robot", "readonly", -2 * h, -30 * time.Minute, d(-1 * h), d(-3 * h), d(-30 * time.Minute), false},
		{"100% done", "alice", "admin", -1 * h, -1 * h, nil, d(-10 * time.Minute), d(-20 * time.Minute), false},
		{"100 days", "svc", "admin", -1 * h, -1 * h, d(48 * h), d(-1 * h), nil, false},
		{"Epsilon", "bob", "readonly", -30 * time.Minute, -30 * time.Minute, nil, d(-3 * h), nil, true},
		{"zeta", "robot", "admin", -10 * time.Minute, -10 * time.Minute, d(1 * h), nil, nil, false},
		{`path\to`, "alice", "readonly", -10 * time.Minute, -1 * h, d(90 * time.Minute), d(-time.Microsecond), nil, false},
		{"delta", "svc", "readonly", -3 * h, -3 * h, nil, nil, nil, false},
	}
	at := func(p *time.Duration) *time.Time {
		if p == nil {
			return nil
		}
		return ptr(now.Add(*p))
	}
	// Ids whose order differs between a case-insensitive and a byte-wise
	// comparison ("key_0a…" < "key_0B…" < "key_0c…" only when folded).
	craftedIDs := map[string]string{"alpha": "0c", "beta": "0B", "zeta": "0a"}
	for _, sp := range specs {
		owner := users[sp.owner]
		k := mustKey(t, s, owner, sp.name, func(k *keyward.Key) {
			if p, ok := craftedIDs[sp.name]; ok {
				k.ID = keyward.PrefixKey + p + k.ID[len(keyward.PrefixKey)+2:]
			}
			k.Role, k.CreatedAt, k.UpdatedAt = sp.role, now.Add(sp.created), now.Add(sp.updated)
			k.ExpiresAt, k.LastUsedAt, k.RevokedAt, k.Disabled = at(sp.expires), at(sp.lastUsed), at(sp.revoked), sp.disabled
		})
		keys = append(keys, withOwner(k, owner))
	}
	stranger := mustUser(t, s, other.ID, "Alice Archer", "alice@example.com", keyward.KindUser)
	users["stranger"] = stranger // not one of keys' owners
	mustKey(t, s, stranger, `alpha beta gamma_1 100% done path\to`)
	return tn, other, users, keys
}

func testListKeysSort(t *testing.T, s keyward.Store) {
	tn, _, _, keys := keyListFixture(t, s)
	for _, sort := range keyward.KeySortColumns {
		for _, desc := range []bool{false, true} {
			want := slices.Clone(keys)
			slices.SortFunc(want, keyOrder(sort, desc, now))
			for _, size := range []int{1, 2, 3, 200} {
				f := keyward.KeyFilter{TenantID: tn.ID, Sort: sort, Desc: desc, PageSize: size, Now: now}
				got, total := listKeyIDs(t, s, f)
				if diff := cmp.Diff(keyIDs(want), got); diff != "" {
					t.Errorf("sort %s desc %v page size %d (-want +got):\n%s", sort, desc, size, diff)
				}
				if total != len(keys) {
					t.Errorf("sort %s desc %v page size %d: total %d, want %d", sort, desc, size, total, len(keys))
				}
			}
		}
	}

	// The rules the reference order encodes, spelled out.
	names := func(sort string, desc bool) []string {
		ids, _ := listKeyIDs(t, s, keyward.KeyFilter{TenantID: tn.ID, Sort: sort, Desc: desc, PageSize: 200, Now: now})
		byID := map[string]string{}
		for _, k := range keys {
			byID[k.ID] = k.Name
		}
		var out []string
		for _, id := range ids {
			out = append(out, byID[id])
		}
		return out
	}
	byName := names("name", false)
	if i := slices.Index(byName, "alpha"); i < 0 || !slices.Contains(byName[max(i-1, 0):i+2], "Alpha") ||
		slices.Index(byName, "delta") < slices.Index(byName, "BETA") {
		t.Errorf("sort by name is not case-insensitive: %q", byName)
	}
	never := []string{"alpha", "100% done", "Epsilon", "delta"}
	if got := names("expires_at", false); !sameSet(got[len(got)-len(never):], never) {
		t.Errorf("sort by expires_at: %q, want the keys that never expire last", got)
	}
	if got := names("expires_at", true); !sameSet(got[:len(never)], never) {
		t.Errorf("sort by -expires_at: %q, want the keys that never expire first", got)
	}
	unused := []string{"alpha", "beta", "gamma_1", "zeta", "delta"}
	if got := names("last_used_at", false); !sameSet(got[:len(unused)], unused) {
		t.Errorf("sort by last_used_at: %q, want the keys never used first", got)
	}
	if got := names("last_used_at", true); !sameSet(got[len(got)-len(unused):], unused) {
		t.Errorf("sort by -last_used_at: %q, want the keys never used last", got)
	}
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func testListKeysFilter(t *testing.T, s keyward.Store) {
	tn, other, users, keys := keyListFixture(t, s)
	idFragment := strings.ToUpper(keys[3].ID[len(keyward.PrefixKey)+2 : len(keyward.PrefixKey)+12])
	matchQ := func(q string) func(k *keyward.Key, _ time.Time) bool {
		return func(k *keyward.Key, _ time.Time) bool {
			return foldContains(k.Name, q) || foldContains(k.ID, q) ||
				foldContains(k.OwnerName, q) || foldContains(k.OwnerEmail, q)
		}
	}
	status := func(st string) func(k *keyward.Key, at time.Time) bool {
		return func(k *keyward.Key, at time.Time) bool { return k.Status(at) == st }
	}
	tests := []struct {
		name  string
		f     keyward.KeyFilter
		match func(k *keyward.Key, at time.Time) bool
		// wantNames, when set, pins the expected keys down by hand as well.
		wantNames []string
	}{
		{name: "all", match: func(*keyward.Key, time.Time) bool { return true }},
		{name: "owner", f: keyward.KeyFilter{OwnerID: users["alice"].ID},
			match:     func(k *keyward.Key, _ time.Time) bool { return k.OwnerID == users["alice"].ID },
			wantNames: []string{"alpha", "beta", "100% done", `path\to`}},
		{name: "type user", f: keyward.KeyFilter{Type: keyward.KindUser},
			match: func(k *keyward.Key, _ time.Time) bool { return k.Type == keyward.KindUser }},
		{name: "type system", f: keyward.KeyFilter{Type: keyward.KindSystem},
			match: func(k *keyward.Key, _ time.Time) bool { return k.Type == keyward.KindSystem }},
		{name: "active", f: keyward.KeyFilter{Status: keyward.StatusActive}, match: status(keyward.StatusActive),
			wantNames: []string{"alpha", "Alpha", "100 days", "zeta", `path\to`, "delta"}},
		{name: "inactive", f: keyward.KeyFilter{Status: keyward.StatusInactive}, match: status(keyward.StatusInactive),
			wantNames: []string{"gamma_1", "Epsilon"}},
		{name: "expired", f: keyward.KeyFilter{Status: keyward.StatusExpired}, match: status(keyward.StatusExpired),
			wantNames: []string{"BETA", "beta"}},
		{name: "revoked", f: keyward.KeyFilter{Status: keyward.StatusRevoked}, match: status(keyward.StatusRevoked),
			wantNames: []string{"gamma-1", "100% done"}},
		{name: "active later", f: keyward.KeyFilter{Status: keyward.StatusActive, Now: now.Add(75 * time.Minute)},
			match: status(keyward.StatusActive), wantNames: []string{"alpha", "Alpha", "100 days", `path\to`, "delta"}},
		{name: "expired later", f: keyward.KeyFilter{Status: keyward.StatusExpired, Now: now.Add(75 * time.Minute)},
			match: status(keyward.StatusExpired), wantNames: []string{"BETA", "beta", "gamma_1", "zeta"}},
		{name: "active earlier", f: keyward.KeyFilter{Status: keyward.StatusActive, Now: now.Add(-90 * time.Minute)},
			match: status(keyward.StatusActive)},
		{name: "q name", f: keyward.KeyFilter{Q: "ALPHA"}, match: matchQ("ALPHA"), wantNames: []string{"alpha", "Alpha"}},
		{name: "q owner name", f: keyward.KeyFilter{Q: "Baker"}, match: matchQ("Baker"),
			wantNames: []string{"Alpha", "gamma_1", "Epsilon"}},
		{name: "q owner email", f: keyward.KeyFilter{Q: "EXAMPLE.ORG"}, match: matchQ("EXAMPLE.ORG"),
			wantNames: []string{"Alpha", "gamma_1", "Epsilon"}},
		{name: "q id", f: keyward.KeyFilter{Q: idFragment}, match: matchQ(idFragment), wantNames: []string{"beta"}},
		{name: "q percent is literal", f: keyward.KeyFilter{Q: "0% d"}, match: matchQ("0% d"),
			wantNames: []string{"100% done"}},
		{name: "q underscore is literal", f: keyward.KeyFilter{Q: "a_1"}, match: matchQ("a_1"),
			wantNames: []string{"gamma_1"}},
		{name: "q backslash is literal", f: keyward.KeyFilter{Q: `h\t`}, match: matchQ(`h\t`),
			wantNames: []string{`path\to`}},
		{name: "q no match", f: keyward.KeyFilter{Q: "nothing like it"}, match: matchQ("nothing like it")},
		{name: "combined", f: keyward.KeyFilter{Q: "a", Type: keyward.KindSystem, Status: keyward.StatusActive},
			match: func(k *keyward.Key, at time.Time) bool {
				return matchQ("a")(k, at) && k.Type == keyward.KindSystem && k.Status(at) == keyward.StatusActive
			}},
		{name: "owner and status", f: keyward.KeyFilter{OwnerID: users["bob"].ID, Status: keyward.StatusInactive},
			match: func(k *keyward.Key, at time.Time) bool {
				return k.OwnerID == users["bob"].ID && k.Status(at) == keyward.StatusInactive
			}, wantNames: []string{"gamma_1", "Epsilon"}},
		{name: "unknown owner", f: keyward.KeyFilter{OwnerID: "usr_missing"},
			match: func(*keyward.Key, time.Time) bool { return false }},
		{name: "owner of another tenant", f: keyward.KeyFilter{OwnerID: users["stranger"].ID},
			match: func(*keyward.Key, time.Time) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.f.Now
			if at.IsZero() {
				at = now
			}
			var want []*keyward.Key
			for _, k := range keys {
				if tt.match(k, at) {
					want = append(want, k)
				}
			}
			if tt.wantNames != nil {
				var names []string
				for _, k := range want {
					names = append(names, k.Name)
				}
				if !sameSet(names, tt.wantNames) {
					t.Fatalf("the suite's reference filter selects %q, the case says %q", names, tt.wantNames)
				}
			}
			for _, order := range []struct {
				sort string
				desc bool
				size int
			}{{"name", false, 2}, {"created_at", true, 200}, {"status", false, 3}} {
				f := tt.f
				f.TenantID, f.Sort, f.Desc, f.PageSize, f.Now = tn.ID, order.sort, order.desc, order.size, at
				sorted := slices.Clone(want)
				slices.SortFunc(sorted, keyOrder(order.sort, order.desc, at))
				got, total := listKeyIDs(t, s, f)
				if diff := cmp.Diff(keyIDs(sorted), got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("sort %s desc %v (-want +got):\n%s", order.sort, order.desc, diff)
				}
				if total != len(want) {
					t.Errorf("sort %s: total %d, want %d", order.sort, total, len(want))
				}
			}
		})
	}

	// Whole pages come back with every field, owner fields included.
	page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) {
		return tx.ListKeys(ctx, keyward.KeyFilter{TenantID: tn.ID, Sort: "created_at", PageSize: 200, Now: now})
	})
	want := slices.Clone(keys)
	slices.SortFunc(want, keyOrder("created_at", false, now))
	if diff := cmp.Diff(want, page.Keys, cmpOpts); diff != "" {
		t.Errorf("ListKeys keys (-want +got):\n%s", diff)
	}

	// The other tenant sees only its own key.
	ids, total := listKeyIDs(t, s, keyward.KeyFilter{TenantID: other.ID, Q: "alpha", Sort: "name", PageSize: 5, Now: now})
	if len(ids) != 1 || total != 1 {
		t.Errorf("ListKeys(other tenant) = %d keys, total %d; want only its own key", len(ids), total)
	}
}

func testListKeysPageTokens(t *testing.T, s keyward.Store) {
	tn, _, _, _ := keyListFixture(t, s)
	base := keyward.KeyFilter{TenantID: tn.ID, Sort: "name", PageSize: 2, Now: now}
	first := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) {
		return tx.ListKeys(ctx, base)
	})
	if first.NextPageToken == "" {
		t.Fatal("ListKeys: no next page token on the first of several pages")
	}
	usersToken := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.UserPage, error) {
		return tx.ListUsers(ctx, keyward.UserFilter{TenantID: tn.ID, PageSize: 1})
	}).NextPageToken
	if usersToken == "" {
		t.Fatal("ListUsers: no next page token on the first of several pages")
	}

	// The same query with another page size goes on where the token says.
	ok := base
	ok.PageToken, ok.PageSize = first.NextPageToken, 3
	mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) { return tx.ListKeys(ctx, ok) })

	tests := []struct {
		name   string
		change func(f *keyward.KeyFilter)
	}{
		{"garbage", func(f *keyward.KeyFilter) { f.PageToken = "not a token!" }},
		{"not JSON", func(f *keyward.KeyFilter) { f.PageToken = base64.RawURLEncoding.EncodeToString([]byte("nope")) }},
		{"no id", func(f *keyward.KeyFilter) { f.PageToken = base64.RawURLEncoding.EncodeToString([]byte(`{"v":"a"}`)) }},
		{"truncated", func(f *keyward.KeyFilter) { f.PageToken = first.NextPageToken[:len(first.NextPageToken)/2] }},
		{"another sort", func(f *keyward.KeyFilter) { f.Sort = "owner" }},
		{"another kind of sort", func(f *keyward.KeyFilter) { f.Sort = "created_at" }},
		{"another direction", func(f *keyward.KeyFilter) { f.Desc = true }},
		{"another q", func(f *keyward.KeyFilter) { f.Q = "a" }},
		{"another type", func(f *keyward.KeyFilter) { f.Type = keyward.KindUser }},
		{"another status", func(f *keyward.KeyFilter) { f.Status = keyward.StatusActive }},
		{"another owner", func(f *keyward.KeyFilter) { f.OwnerID = "usr_x" }},
		{"another tenant", func(f *keyward.KeyFilter) { f.TenantID = "ten_other" }},
		{"a users token", func(f *keyward.KeyFilter) { f.PageToken = usersToken }},
	}
	for _, tt := range tests {
		f := base
		f.PageToken = first.NextPageToken
		tt.change(&f)
		_, err := get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) { return tx.ListKeys(ctx, f) })
		wantCode(t, "ListKeys("+tt.name+")", err, keyward.EInvalid)
	}

	// And a keys token is no users token.
	_, err := get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.UserPage, error) {
		return tx.ListUsers(ctx, keyward.UserFilter{TenantID: tn.ID, PageSize: 1, PageToken: first.NextPageToken})
	})
	wantCode(t, "ListUsers(a keys token)", err, keyward.EInvalid)
}

func testListUsers(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	var users []*keyward.User
	for _, u := range []struct{ name, email, kind string }{
		{"alice", "alice@example.com", keyward.KindUser},
		{"Alice", "alice2@example.com", keyward.KindUser},
		{"ALICE", "robot@svc.example", keyward.KindSystem},
		{"Bob Baker", "bob@example.org", keyward.KindUser},
		{"billing", "billing@svc.example", keyward.KindSystem},
		{"carol_x", "carol@example.com", keyward.KindUser},
		{"carol-x", "carol2@example.com", keyward.KindUser},
		{"100% dave", "dave@example.com", keyward.KindUser},
		{"Zed", "zed@EXAMPLE.com", keyward.KindUser},
	} {
		users = append(users, mustUser(t, s, tn.ID, u.name, u.email, u.kind))
	}
	mustUser(t, s, other.ID, "alice elsewhere", "alice@example.com", keyward.KindUser)
	order := func(a, b *keyward.User) int {
		if c := foldCompare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	}
	slices.SortFunc(users, order)
	idFragment := strings.ToLower(users[4].ID[6:14])

	tests := []struct {
		name  string
		q     string
		kind  string
		match func(u *keyward.User) bool
		count int
	}{
		{"all", "", "", func(*keyward.User) bool { return true }, 9},
		{"kind system", "", keyward.KindSystem, func(u *keyward.User) bool { return u.Kind == keyward.KindSystem }, 2},
		{"kind user", "", keyward.KindUser, func(u *keyward.User) bool { return u.Kind == keyward.KindUser }, 7},
		{"q name", "ALIC", "", func(u *keyward.User) bool { return foldContains(u.Name, "alic") || foldContains(u.Email, "alic") }, 3},
		{"q email", "Example.ORG", "", func(u *keyward.User) bool { return foldContains(u.Email, "example.org") }, 1},
		{"q id", idFragment, "", func(u *keyward.User) bool { return foldContains(u.ID, idFragment) }, 1},
		{"q underscore", "l_x", "", func(u *keyward.User) bool { return foldContains(u.Name, "l_x") }, 1},
		{"q percent", "0% d", "", func(u *keyward.User) bool { return foldContains(u.Name, "0% d") }, 1},
		{"q and kind", "svc", keyward.KindSystem, func(u *keyward.User) bool {
			return u.Kind == keyward.KindSystem && foldContains(u.Email, "svc")
		}, 2},
	}
	for _, tt := range tests {
		var want []string
		for _, u := range users {
			if tt.match(u) {
				want = append(want, u.ID)
			}
		}
		if len(want) != tt.count {
			t.Fatalf("%s: the suite's reference filter selects %d users, the case says %d", tt.name, len(want), tt.count)
		}
		for _, size := range []int{1, 2, 3, 200} {
			f := keyward.UserFilter{TenantID: tn.ID, Q: tt.q, Kind: tt.kind, PageSize: size}
			var got []string
			for pages := 0; ; pages++ {
				page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.UserPage, error) {
					return tx.ListUsers(ctx, f)
				})
				if page.Total != len(want) {
					t.Errorf("%s size %d: total %d, want %d", tt.name, size, page.Total, len(want))
				}
				if len(page.Users) > size || page.NextPageToken != "" && len(page.Users) != size {
					t.Errorf("%s size %d: page of %d users", tt.name, size, len(page.Users))
				}
				for _, u := range page.Users {
					got = append(got, u.ID)
				}
				if page.NextPageToken == "" || pages > len(users) {
					break
				}
				f.PageToken = page.NextPageToken
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s size %d (-want +got):\n%s", tt.name, size, diff)
			}
		}
	}

	page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.UserPage, error) {
		return tx.ListUsers(ctx, keyward.UserFilter{TenantID: tn.ID, PageSize: 200})
	})
	if diff := cmp.Diff(users, page.Users); diff != "" {
		t.Errorf("ListUsers users (-want +got):\n%s", diff)
	}

	first := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.UserPage, error) {
		return tx.ListUsers(ctx, keyward.UserFilter{TenantID: tn.ID, PageSize: 2})
	})
	for name, f := range map[string]keyward.UserFilter{
		"garbage":        {TenantID: tn.ID, PageSize: 2, PageToken: "%%%"},
		"another q":      {TenantID: tn.ID, PageSize: 2, PageToken: first.NextPageToken, Q: "a"},
		"another kind":   {TenantID: tn.ID, PageSize: 2, PageToken: first.NextPageToken, Kind: keyward.KindUser},
		"another tenant": {TenantID: other.ID, PageSize: 2, PageToken: first.NextPageToken},
	} {
		_, err := get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.UserPage, error) { return tx.ListUsers(ctx, f) })
		wantCode(t, "ListUsers("+name+")", err, keyward.EInvalid)
	}
}

// testListKeysTotals checks the total of every kind of list as keys come and
// go: created, deleted one by one, deleted with their owner, in one tenant
// and not another, and refused creates that leave nothing behind. A store may
// keep totals apart from the rows (SQLite counts by trigger); they must agree
// with the rows.
func testListKeysTotals(t *testing.T, s keyward.Store) {
	tn, other := mustTenant(t, s, "Acme"), mustTenant(t, s, "Other")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@acme.example", keyward.KindUser)
	bob := mustUser(t, s, tn.ID, "Bob", "bob@acme.example", keyward.KindUser)
	ci := mustUser(t, s, tn.ID, "CI", "ci@acme.example", keyward.KindSystem)
	zed := mustUser(t, s, other.ID, "Zed", "zed@other.example", keyward.KindSystem)
	want := func(step string, all, users, systems, others int) {
		t.Helper()
		for _, c := range []struct {
			tenant, kind string
			want         int
		}{{tn.ID, "", all}, {tn.ID, keyward.KindUser, users}, {tn.ID, keyward.KindSystem, systems}, {other.ID, "", others}} {
			page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) {
				return tx.ListKeys(ctx, keyward.KeyFilter{TenantID: c.tenant, Type: c.kind, PageSize: 1, Now: now})
			})
			if page.Total != c.want {
				t.Errorf("%s: total of tenant %s, type %q: %d, want %d", step, c.tenant, c.kind, page.Total, c.want)
			}
		}
	}
	want("empty", 0, 0, 0, 0)
	a1, _ := mustKey(t, s, ada, "a1"), mustKey(t, s, ada, "a2")
	b1 := mustKey(t, s, bob, "b1")
	for i := range 3 {
		mustKey(t, s, ci, "ci"+string(rune('0'+i)))
	}
	mustKey(t, s, zed, "z1")
	want("created", 6, 3, 3, 1)

	// A refused create (a duplicate secret) and a rolled-back one count nothing.
	dup := newKey(t, ada, "dup")
	dup.Hash = a1.Hash
	err := update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateKey(ctx, dup) })
	wantCode(t, "CreateKey(duplicate secret)", err, keyward.EConflict)
	errRollback := errors.New("roll back")
	if err := update(s, func(ctx context.Context, tx keyward.Tx) error {
		if err := tx.CreateKey(ctx, newKey(t, bob, "rolled back")); err != nil {
			return err
		}
		return errRollback
	}); !errors.Is(err, errRollback) {
		t.Fatalf("rolled-back create: %v", err)
	}
	want("refused and rolled back", 6, 3, 3, 1)

	// Revocation keeps a key in the lists; deletion takes it out.
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error {
		_, err := tx.RevokeKeys(ctx, keyward.RevokeSpec{TenantID: tn.ID, At: now})
		return err
	})
	want("revoked", 6, 3, 3, 1)
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteKey(ctx, tn.ID, b1.ID) })
	want("one deleted", 5, 2, 3, 1)
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteUser(ctx, tn.ID, ci.ID) })
	want("a system user deleted with its keys", 2, 2, 0, 1)
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteUser(ctx, tn.ID, ada.ID) })
	want("a person deleted with their keys", 0, 0, 0, 1)
}

// testListKeysUnicodeSearch: the contract's search is case-insensitive for
// every letter, not ASCII letters only, in key names and owners alike; an
// ASCII search still finds names with other letters around it.
func testListKeysUnicodeSearch(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	zoe := mustUser(t, s, tn.ID, "Zoë Ärger", "zoë@acme.example", keyward.KindUser)
	ada := mustUser(t, s, tn.ID, "Ada", "ada@acme.example", keyward.KindUser)
	emile := mustKey(t, s, ada, "Émile ÜBER key")
	zk := mustKey(t, s, zoe, "plain")
	mustKey(t, s, ada, "unrelated")
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"émile", []string{emile.ID}},
		{"ÉMILE", []string{emile.ID}},
		{"über", []string{emile.ID}},
		{"mile", []string{emile.ID}},
		{"ZOË", []string{zk.ID}},
		{"ärger", []string{zk.ID}},
		{"zoë@acme", []string{zk.ID}},
	} {
		page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) {
			return tx.ListKeys(ctx, keyward.KeyFilter{TenantID: tn.ID, Q: c.q, Sort: "name", PageSize: 50, Now: now})
		})
		var got []string
		for _, k := range page.Keys {
			got = append(got, k.ID)
		}
		if !slices.Equal(got, c.want) || page.Total != len(c.want) {
			t.Errorf("q=%q: keys %v (total %d), want %v", c.q, got, page.Total, c.want)
		}
	}
	users := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.UserPage, error) {
		return tx.ListUsers(ctx, keyward.UserFilter{TenantID: tn.ID, Q: "ZOË", PageSize: 50})
	})
	if users.Total != 1 || users.Users[0].ID != zoe.ID {
		t.Errorf("users q=ZOË: %d users, want Zoë", users.Total)
	}
}
