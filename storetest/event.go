package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward"
)

func testEvents(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	full := &keyward.Event{ID: mustID(t, keyward.PrefixEvent), Time: now.Add(-time.Microsecond), TenantID: tn.ID,
		Action: keyward.ActionKeyRevoked,
		Actor:  keyward.Ref{Type: keyward.ActorKey, ID: "key_actor", Name: "ci key"},
		Target: keyward.Ref{Type: keyward.TargetKey, ID: "key_target", Name: "prod key ✓"},
		IP:     "2001:db8::1", UserAgent: "keyward-cli/1.0 (linux)",
		Details:     map[string]any{"reason": "leak", "count": 3.0, "ok": true, "nested": map[string]any{"ids": []any{"a", "b"}}},
		ActorUserID: "usr_owner", TargetOwnerID: "usr_target_owner",
	}
	bare := &keyward.Event{ID: mustID(t, keyward.PrefixEvent), Time: now, TenantID: tn.ID,
		Action: keyward.ActionAuthFailed, Actor: keyward.Ref{Type: keyward.ActorSystem}}
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.InsertEvents(ctx, full, bare) })
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.InsertEvents(ctx) })

	wantBare := *bare
	wantBare.Details = map[string]any{} // nil details read back as an empty object
	page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) {
		return tx.ListEvents(ctx, keyward.EventFilter{TenantID: tn.ID, PageSize: 10})
	})
	if diff := cmp.Diff([]*keyward.Event{&wantBare, full}, page.Events); diff != "" {
		t.Errorf("ListEvents (-want +got):\n%s", diff)
	}
	for _, e := range page.Events {
		checkUTC(t, "event", &e.Time)
		if e.Details == nil {
			t.Errorf("event %s: nil details, want an empty object", e.Action)
		}
	}

	dup := *bare
	err := update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.InsertEvents(ctx, &dup) })
	wantCode(t, "InsertEvents(duplicate id)", err, keyward.EConflict)
}

func testListEvents(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	bob := mustUser(t, s, tn.ID, "Bob", "bob@example.com", keyward.KindUser)
	zed := mustUser(t, s, tn.ID, "Zed", "zed@example.com", keyward.KindUser, keyward.RoleTenantAdmin)
	kA := mustKey(t, s, ada, "ada's key")
	kB := mustKey(t, s, bob, "bob's key")

	h := time.Hour
	type spec struct {
		at            time.Duration
		action        string
		actor, target keyward.Ref
		actorUser     string
		targetOwner   string
	}
	user := func(u *keyward.User) keyward.Ref { return keyward.Ref{Type: keyward.ActorUser, ID: u.ID, Name: u.Name} }
	key := func(k *keyward.Key) keyward.Ref { return keyward.Ref{Type: keyward.TargetKey, ID: k.ID, Name: k.Name} }
	specs := []spec{
		{-3 * h, keyward.ActionKeyCreated, user(ada), key(kA), ada.ID, ada.ID},
		{-3 * h, keyward.ActionKeyCreated, user(zed), key(kB), zed.ID, bob.ID},
		{-3 * h, keyward.ActionKeyDeactivated, user(ada), key(kA), ada.ID, ada.ID},
		{-2 * h, keyward.ActionKeyRevoked, keyward.Ref{Type: keyward.ActorKey, ID: kA.ID}, key(kB), ada.ID, bob.ID},
		{-1 * h, keyward.ActionUserUpdated, user(zed), keyward.Ref{Type: keyward.TargetUser, ID: bob.ID}, zed.ID, bob.ID},
		{-1 * h, keyward.ActionSettingsUpdated, user(zed), keyward.Ref{Type: keyward.TargetSettings, ID: tn.ID}, zed.ID, ""},
		// A target of another type that happens to share the key's id is not about the key.
		{-30 * time.Minute, keyward.ActionUserUpdated, user(zed), keyward.Ref{Type: keyward.TargetUser, ID: kA.ID}, zed.ID, ""},
		{-time.Microsecond, keyward.ActionKeyUpdated, user(ada), key(kA), ada.ID, ada.ID},
		{0, keyward.ActionAuthFailed, keyward.Ref{Type: keyward.ActorSystem}, keyward.Ref{}, "", ""},
	}
	var events []*keyward.Event
	for _, sp := range specs {
		events = append(events, &keyward.Event{ID: mustID(t, keyward.PrefixEvent), Time: now.Add(sp.at),
			TenantID: tn.ID, Action: sp.action, Actor: sp.actor, Target: sp.target,
			ActorUserID: sp.actorUser, TargetOwnerID: sp.targetOwner, Details: map[string]any{}})
	}
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.InsertEvents(ctx, events...) })
	// The same people and keys in another tenant's trail, never listed here.
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error {
		e := *events[3]
		e.ID, e.TenantID = mustID(t, keyward.PrefixEvent), other.ID
		return tx.InsertEvents(ctx, &e)
	})
	newestFirst := func(a, b *keyward.Event) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	}

	tests := []struct {
		name  string
		f     keyward.EventFilter
		match func(e *keyward.Event) bool
		count int
	}{
		{"all", keyward.EventFilter{}, func(*keyward.Event) bool { return true }, 9},
		{"action", keyward.EventFilter{Action: keyward.ActionKeyCreated},
			func(e *keyward.Event) bool { return e.Action == keyward.ActionKeyCreated }, 2},
		{"key", keyward.EventFilter{KeyID: kA.ID},
			func(e *keyward.Event) bool { return e.Target.Type == keyward.TargetKey && e.Target.ID == kA.ID }, 3},
		{"actor user, also behind a key", keyward.EventFilter{ActorID: ada.ID},
			func(e *keyward.Event) bool { return e.Actor.ID == ada.ID || e.ActorUserID == ada.ID }, 4},
		{"actor key", keyward.EventFilter{ActorID: kA.ID},
			func(e *keyward.Event) bool { return e.Actor.ID == kA.ID }, 1},
		{"since is inclusive", keyward.EventFilter{Since: ptr(now.Add(-2 * h))},
			func(e *keyward.Event) bool { return !e.Time.Before(now.Add(-2 * h)) }, 6},
		{"until is exclusive", keyward.EventFilter{Until: ptr(now.Add(-1 * h))},
			func(e *keyward.Event) bool { return e.Time.Before(now.Add(-1 * h)) }, 4},
		{"window", keyward.EventFilter{Since: ptr(now.Add(-3 * h)), Until: ptr(now.Add(-2 * h))},
			func(e *keyward.Event) bool { return e.Time.Equal(now.Add(-3 * h)) }, 3},
		{"visible to bob", keyward.EventFilter{VisibleTo: bob.ID},
			func(e *keyward.Event) bool { return e.ActorUserID == bob.ID || e.TargetOwnerID == bob.ID }, 3},
		{"visible to ada", keyward.EventFilter{VisibleTo: ada.ID},
			func(e *keyward.Event) bool { return e.ActorUserID == ada.ID || e.TargetOwnerID == ada.ID }, 4},
		{"visible to ada, key created", keyward.EventFilter{VisibleTo: ada.ID, Action: keyward.ActionKeyCreated},
			func(e *keyward.Event) bool {
				return e.Action == keyward.ActionKeyCreated && (e.ActorUserID == ada.ID || e.TargetOwnerID == ada.ID)
			}, 1},
		{"no match", keyward.EventFilter{Action: "nothing"}, func(*keyward.Event) bool { return false }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []*keyward.Event
			for _, e := range events {
				if tt.match(e) {
					want = append(want, e)
				}
			}
			if len(want) != tt.count {
				t.Fatalf("the suite's reference filter selects %d events, the case says %d", len(want), tt.count)
			}
			slices.SortFunc(want, newestFirst)
			for _, size := range []int{1, 2, 3, 200} {
				f := tt.f
				f.TenantID, f.PageSize = tn.ID, size
				var got []*keyward.Event
				for pages := 0; ; pages++ {
					page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) {
						return tx.ListEvents(ctx, f)
					})
					if page.Total != len(want) {
						t.Errorf("size %d: total %d, want %d", size, page.Total, len(want))
					}
					if len(page.Events) > size || page.NextPageToken != "" && len(page.Events) != size {
						t.Errorf("size %d: page of %d events", size, len(page.Events))
					}
					got = append(got, page.Events...)
					if page.NextPageToken == "" || pages > len(events) {
						break
					}
					f.PageToken = page.NextPageToken
				}
				if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("size %d (-want +got):\n%s", size, diff)
				}
			}
		})
	}

	first := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) {
		return tx.ListEvents(ctx, keyward.EventFilter{TenantID: tn.ID, PageSize: 2})
	})
	for name, f := range map[string]keyward.EventFilter{
		"garbage":        {TenantID: tn.ID, PageSize: 2, PageToken: "***"},
		"another action": {TenantID: tn.ID, PageSize: 2, PageToken: first.NextPageToken, Action: keyward.ActionKeyCreated},
		"another key":    {TenantID: tn.ID, PageSize: 2, PageToken: first.NextPageToken, KeyID: kA.ID},
		"another actor":  {TenantID: tn.ID, PageSize: 2, PageToken: first.NextPageToken, ActorID: ada.ID},
		"another since":  {TenantID: tn.ID, PageSize: 2, PageToken: first.NextPageToken, Since: ptr(now)},
		"another until":  {TenantID: tn.ID, PageSize: 2, PageToken: first.NextPageToken, Until: ptr(now)},
		"another viewer": {TenantID: tn.ID, PageSize: 2, PageToken: first.NextPageToken, VisibleTo: ada.ID},
		"another tenant": {TenantID: other.ID, PageSize: 2, PageToken: first.NextPageToken},
	} {
		_, err := get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) { return tx.ListEvents(ctx, f) })
		wantCode(t, "ListEvents("+name+")", err, keyward.EInvalid)
	}
}
