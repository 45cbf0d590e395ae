package keyward_test

// Usage counts and spikes through the service: KeyUsage's range rules and
// visibility, hourly buckets fed by a real usage.Recorder over SQLite, and
// key.usage_spike events.

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/usage"
)

// usageEnv is a tenant whose verifications go through a real recorder on the
// service's store and clock. Only the test's own Flush calls write.
type usageEnv struct {
	*keysEnv
	rec *usage.Recorder
}

func mustUsageEnv(tb testing.TB, spikes *usage.SpikeConfig) *usageEnv {
	tb.Helper()
	var rec *usage.Recorder
	e := mustServiceWith(tb, func(o *keyward.Options, e *env) {
		var svc **keyward.Service = &e.svc // set once NewService returns
		opts := []usage.Option{usage.WithClock(e.clock.Now)}
		if spikes != nil {
			opts = append(opts, usage.WithSpikes(*spikes, func(ctx context.Context, s []keyward.UsageSpike) error {
				return (*svc).RecordUsageSpikes(ctx, s)
			}))
		}
		rec = usage.New(e.db, slog.New(slog.DiscardHandler), time.Hour, opts...)
		o.OnUse, o.OnVerify = rec.Used, rec.Count
	})
	tb.Cleanup(func() { rec.Close(context.Background()) })
	a := mustTenant(tb, e, "Acme")
	mustSettings(tb, e, a.Admin, keyward.SettingsPatch{MaxKeysPerUser: ptr(1000), MaxKeysPerServiceUser: ptr(1000)})
	return &usageEnv{rec: rec, keysEnv: &keysEnv{e: e, a: a,
		dev:    mustPerson(tb, e, a.Admin, "dev@acme.example", true, keyward.RoleDeveloper),
		plain:  mustPerson(tb, e, a.Admin, "plain@acme.example", true),
		system: mustUser(tb, e, a.Admin, keyward.UserInput{Email: "svc@acme.example", Name: "Svc", Kind: keyward.KindSystem}),
	}}
}

func (u *usageEnv) flush(tb testing.TB) {
	tb.Helper()
	if err := u.rec.Flush(context.Background()); err != nil {
		tb.Fatalf("Flush: %v", err)
	}
}

// bucket is a UsageBucket as the tests write it.
type bucket struct {
	Hour   string // 15:04 on t0's day, or a full RFC 3339 time
	Counts map[string]int64
	Total  int64
}

func hourOf(s string) time.Time {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t
	}
	t, err := time.Parse("15:04", s)
	if err != nil {
		panic(err)
	}
	return time.Date(t0.Year(), t0.Month(), t0.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
}

func wantBuckets(tb testing.TB, what string, got []keyward.UsageBucket, want []bucket) {
	tb.Helper()
	w := make([]keyward.UsageBucket, len(want))
	for i, b := range want {
		w[i] = keyward.UsageBucket{Hour: hourOf(b.Hour), Counts: b.Counts, Total: b.Total}
	}
	if got == nil {
		tb.Errorf("%s: buckets nil, want a list", what)
	}
	if diff := cmp.Diff(w, got); diff != "" {
		tb.Errorf("%s: buckets (-want +got):\n%s", what, diff)
	}
	for _, b := range got {
		if b.Hour.Location() != time.UTC {
			tb.Errorf("%s: hour %v not in UTC", what, b.Hour)
		}
	}
}

func keyUsage(tb testing.TB, e *env, c *caller, id string, from, to *time.Time) (time.Time, time.Time, []keyward.UsageBucket) {
	tb.Helper()
	start, end, buckets, err := e.svc.KeyUsage(context.Background(), c.p(tb), id, from, to)
	if err != nil {
		tb.Fatalf("KeyUsage(%s, %v, %v) as %s: %v", id, from, to, c.name, err)
	}
	return start, end, buckets
}

func TestKeyUsageRange(t *testing.T) {
	u := mustUsageEnv(t, nil)
	e := u.e
	key, _ := mustKey(t, e, u.dev, keyward.KeyInput{Name: "k"})
	e.clock.Advance(30*time.Minute + 15*time.Second + 500*time.Millisecond) // 10:30:15.5
	at := func(s string) *time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return &tm
	}
	for _, tc := range []struct {
		name         string
		from, to     *time.Time
		start, end   string // want
		invalidRange bool
	}{
		{name: "defaults: the last 24 hours, the current one included", start: "2026-11-21T11:00:00Z", end: "2026-11-22T11:00:00Z"},
		{name: "from rounded down", from: at("2026-11-22T09:15:00Z"), start: "2026-11-22T09:00:00Z", end: "2026-11-22T11:00:00Z"},
		{name: "to rounded up, from 24 hours before it", to: at("2026-11-22T10:05:00Z"), start: "2026-11-21T11:00:00Z", end: "2026-11-22T11:00:00Z"},
		{name: "to on the hour stays", to: at("2026-11-22T10:00:00Z"), start: "2026-11-21T10:00:00Z", end: "2026-11-22T10:00:00Z"},
		{name: "a microsecond past the hour", from: at("2026-11-22T09:00:00.000001Z"), to: at("2026-11-22T09:00:00.000001Z"),
			start: "2026-11-22T09:00:00Z", end: "2026-11-22T10:00:00Z"},
		{name: "other zones are read in UTC", from: at("2026-11-22T08:30:00+02:00"), to: at("2026-11-22T12:30:00+02:00"),
			start: "2026-11-22T06:00:00Z", end: "2026-11-22T11:00:00Z"},
		{name: "31 days exactly", from: at("2026-10-22T10:00:00Z"), to: at("2026-11-22T10:00:00Z"),
			start: "2026-10-22T10:00:00Z", end: "2026-11-22T10:00:00Z"},
		{name: "in the future", from: at("2027-01-01T00:00:00Z"), to: at("2027-01-01T05:00:00Z"),
			start: "2027-01-01T00:00:00Z", end: "2027-01-01T05:00:00Z"},
		{name: "from after to", from: at("2026-11-22T12:00:00Z"), to: at("2026-11-22T11:00:00Z"), invalidRange: true},
		{name: "from equal to", from: at("2026-11-22T10:00:00Z"), to: at("2026-11-22T10:00:00Z"), invalidRange: true},
		{name: "equal once rounded", from: at("2026-11-22T10:10:00Z"), to: at("2026-11-22T10:00:00Z"), invalidRange: true},
		{name: "from in the future, default to", from: at("2026-11-22T11:00:00Z"), invalidRange: true},
		{name: "31 days and an hour", from: at("2026-10-22T09:00:00Z"), to: at("2026-11-22T10:00:00Z"), invalidRange: true},
		{name: "31 days and a minute, once rounded", from: at("2026-10-22T09:59:00Z"), to: at("2026-11-22T10:00:00Z"), invalidRange: true},
		{name: "only from, long ago", from: at("2026-01-01T00:00:00Z"), invalidRange: true},
		{name: "to beyond year 9999 once rounded", from: at("9999-12-31T20:00:00Z"), to: at("9999-12-31T23:30:00Z"), invalidRange: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, end, buckets, err := e.svc.KeyUsage(context.Background(), u.dev.p(t), key.ID, tc.from, tc.to)
			if tc.invalidRange {
				wantCode(t, err, keyward.EInvalid)
				return
			}
			if err != nil {
				t.Fatalf("KeyUsage: %v", err)
			}
			if got := start.Format(time.RFC3339Nano); got != tc.start {
				t.Errorf("from %s, want %s", got, tc.start)
			}
			if got := end.Format(time.RFC3339Nano); got != tc.end {
				t.Errorf("to %s, want %s", got, tc.end)
			}
			if start.Location() != time.UTC || end.Location() != time.UTC {
				t.Errorf("from %v, to %v: want UTC", start, end)
			}
			if buckets == nil || len(buckets) != 0 {
				t.Errorf("an unused key has buckets %#v, want an empty list", buckets)
			}
		})
	}
	// A range error is checked before the key: an unknown key with a bad
	// range is still a bad request, and a good range then not found.
	_, _, _, err := e.svc.KeyUsage(context.Background(), u.dev.p(t), "key_missing", at("2026-11-22T12:00:00Z"), at("2026-11-22T11:00:00Z"))
	wantCode(t, err, keyward.EInvalid)
	_, _, _, err = e.svc.KeyUsage(context.Background(), u.dev.p(t), "key_missing", nil, nil)
	wantCode(t, err, keyward.ENotFound)
}

func TestKeyUsageVisibility(t *testing.T) {
	u := mustUsageEnv(t, nil)
	e := u.e
	ctx := context.Background()
	devKey, devSecret := mustKey(t, e, u.dev, keyward.KeyInput{Name: "dev's", Role: keyward.KeyRoleReadonly})
	sysKey, _ := mustKey(t, e, u.a.Admin, keyward.KeyInput{Name: "service", OwnerID: u.system.ID})
	verifyCode(t, e, devSecret, keyward.VerifyInput{})
	u.flush(t)
	b := mustTenant(t, e, "Other")
	devAsKey := &caller{e: e, name: "the dev's readonly key", cred: devSecret}
	want := []bucket{{Hour: "10:00", Counts: map[string]int64{keyward.CodeValid: 1}, Total: 1}}

	for _, c := range []*caller{u.dev, devAsKey, u.a.Admin, u.a.AdminKey} {
		_, _, got := keyUsage(t, e, c, devKey.ID, nil, nil)
		wantBuckets(t, "dev's key as "+c.name, got, want)
	}
	keyUsage(t, e, u.a.Admin, sysKey.ID, nil, nil)
	for _, tc := range []struct {
		c  *caller
		id string
	}{
		{u.plain, devKey.ID},    // a non-owner who is not an administrator
		{u.dev, sysKey.ID},      // a developer and a system user's key
		{b.Admin, devKey.ID},    // another tenant's administrator
		{b.AdminKey, devKey.ID}, // and its admin key
		{u.a.Admin, "key_missing"},
		{u.a.Admin, b.KeyID}, // another tenant's key, by its real id
	} {
		_, _, buckets, err := e.svc.KeyUsage(ctx, tc.c.p(t), tc.id, nil, nil)
		wantCode(t, err, keyward.ENotFound)
		if len(buckets) != 0 {
			t.Errorf("%s reading %s: refused but given %v", tc.c.name, tc.id, buckets)
		}
	}

	// A deleted key's usage is gone with it.
	if err := e.svc.DeleteKey(ctx, u.dev.p(t), devKey.ID); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := e.svc.KeyUsage(ctx, u.a.Admin.p(t), devKey.ID, nil, nil)
	wantCode(t, err, keyward.ENotFound)
}

func TestKeyUsageBuckets(t *testing.T) {
	u := mustUsageEnv(t, nil)
	e := u.e
	ctx := context.Background()
	key, secret := mustKey(t, e, u.dev, keyward.KeyInput{Name: "counted", Role: keyward.KeyRoleReadonly, RateLimit: rl(3, 3600)})
	other, otherSecret := mustKey(t, e, u.dev, keyward.KeyInput{Name: "other"})
	verify := func(n int, in keyward.VerifyInput, want string) {
		t.Helper()
		for range n {
			if c := verifyCode(t, e, secret, in); c != want {
				t.Fatalf("at %v: %s, want %s", e.clock.Now(), c, want)
			}
		}
	}

	// 10:00: three valid, two over the limit, one short of the role.
	e.clock.Advance(5 * time.Minute)
	verify(3, keyward.VerifyInput{}, keyward.CodeValid)
	verify(2, keyward.VerifyInput{}, keyward.CodeRateLimited)
	verify(1, keyward.VerifyInput{RequireRole: keyward.KeyRoleAdmin}, keyward.CodeForbidden)
	verifyCode(t, e, otherSecret, keyward.VerifyInput{})
	u.flush(t) // one flush in the middle: counts of one hour add up across flushes
	e.clock.Advance(50 * time.Minute)
	verify(1, keyward.VerifyInput{}, keyward.CodeRateLimited)

	// 11:10: a new window; then deactivated.
	e.clock.Advance(15 * time.Minute)
	verify(2, keyward.VerifyInput{}, keyward.CodeValid)
	if _, err := e.svc.DeactivateKey(ctx, u.dev.p(t), key.ID); err != nil {
		t.Fatal(err)
	}
	verify(2, keyward.VerifyInput{}, keyward.CodeInactive)
	if _, err := e.svc.ReactivateKey(ctx, u.dev.p(t), key.ID); err != nil {
		t.Fatal(err)
	}

	// Nothing at 12:00; at 13:59:59 one valid use.
	e.clock.Advance(2*time.Hour + 49*time.Minute + 59*time.Second)
	verify(1, keyward.VerifyInput{}, keyward.CodeValid)
	lastUse := e.clock.Now()
	// A malformed or unknown key counts for no key.
	verifyCode(t, e, "kw_nope", keyward.VerifyInput{})
	verifyCode(t, e, changeLast(secret), keyward.VerifyInput{})

	// Not yet flushed: not yet counted.
	_, _, got := keyUsage(t, e, u.dev, key.ID, ptr(t0), ptr(t0.Add(5*time.Hour)))
	wantBuckets(t, "before the flush", got, []bucket{
		{Hour: "10:00", Counts: map[string]int64{keyward.CodeValid: 3, keyward.CodeRateLimited: 2, keyward.CodeForbidden: 1}, Total: 6},
	})
	u.flush(t)

	all := []bucket{
		{Hour: "10:00", Counts: map[string]int64{keyward.CodeValid: 3, keyward.CodeRateLimited: 3, keyward.CodeForbidden: 1}, Total: 7},
		{Hour: "11:00", Counts: map[string]int64{keyward.CodeValid: 2, keyward.CodeInactive: 2}, Total: 4},
		{Hour: "13:00", Counts: map[string]int64{keyward.CodeValid: 1}, Total: 1},
	}
	_, _, got = keyUsage(t, e, u.dev, key.ID, ptr(t0), ptr(t0.Add(5*time.Hour)))
	wantBuckets(t, "10:00 to 15:00", got, all)
	_, _, got = keyUsage(t, e, u.dev, key.ID, nil, nil) // the last 24 hours from 13:59:59
	wantBuckets(t, "default range", got, all)
	_, _, got = keyUsage(t, e, u.dev, key.ID, ptr(t0.Add(time.Hour)), ptr(t0.Add(3*time.Hour)))
	wantBuckets(t, "11:00 to 13:00 (to excluded)", got, all[1:2])
	_, _, got = keyUsage(t, e, u.dev, key.ID, ptr(t0.Add(90*time.Minute)), ptr(t0.Add(3*time.Hour+time.Second)))
	wantBuckets(t, "11:30 to 13:00:01, rounded to 11:00 to 14:00", got, all[1:])
	_, _, got = keyUsage(t, e, u.dev, key.ID, ptr(t0.Add(-24*time.Hour)), ptr(t0))
	wantBuckets(t, "the day before", got, nil)
	_, _, got = keyUsage(t, e, u.dev, other.ID, ptr(t0), ptr(t0.Add(5*time.Hour)))
	wantBuckets(t, "the other key", got, []bucket{{Hour: "10:00", Counts: map[string]int64{keyward.CodeValid: 1}, Total: 1}})

	// last_used_at went out with the same flush: the last VALID use.
	if k := storedKey(t, e, u.a.ID, key.ID); k.LastUsedAt == nil || !k.LastUsedAt.Equal(lastUse) {
		t.Errorf("last_used_at %v, want %v", k.LastUsedAt, lastUse)
	}

	// An hour's counts from several nodes (AddUsage directly) add up with these.
	if err := e.db.Update(ctx, func(tx keyward.Tx) error {
		return tx.AddUsage(ctx, []keyward.UsageCount{
			{KeyID: key.ID, Hour: t0.Add(3 * time.Hour), Code: keyward.CodeValid, Count: 10},
			{KeyID: key.ID, Hour: t0.Add(3 * time.Hour), Code: keyward.CodeExpired, Count: 5},
			{KeyID: key.ID, Hour: t0.Add(2 * time.Hour), Code: keyward.CodeRevoked, Count: 1},
		})
	}); err != nil {
		t.Fatal(err)
	}
	_, _, got = keyUsage(t, e, u.a.Admin, key.ID, ptr(t0.Add(2*time.Hour)), ptr(t0.Add(4*time.Hour)))
	wantBuckets(t, "after AddUsage", got, []bucket{
		{Hour: "12:00", Counts: map[string]int64{keyward.CodeRevoked: 1}, Total: 1},
		{Hour: "13:00", Counts: map[string]int64{keyward.CodeValid: 11, keyward.CodeExpired: 5}, Total: 16},
	})
}

// TestKeyUsageCountsRotation: the rotated key's counts are its own.
func TestKeyUsageCountsRotation(t *testing.T) {
	u := mustUsageEnv(t, nil)
	e := u.e
	old, oldSecret := mustKey(t, e, u.dev, keyward.KeyInput{Name: "rotating", RateLimit: rl(2, 60)})
	grace := time.Hour
	nk, secret, err := e.svc.RotateKey(context.Background(), u.dev.p(t), old.ID, &grace)
	if err != nil {
		t.Fatal(err)
	}
	e.remember(secret)
	for range 3 {
		verifyCode(t, e, oldSecret, keyward.VerifyInput{})
	}
	verifyCode(t, e, secret, keyward.VerifyInput{})
	u.flush(t)
	_, _, got := keyUsage(t, e, u.dev, old.ID, nil, nil)
	wantBuckets(t, "old key", got, []bucket{{Hour: "10:00", Counts: map[string]int64{keyward.CodeValid: 2, keyward.CodeRateLimited: 1}, Total: 3}})
	_, _, got = keyUsage(t, e, u.dev, nk.ID, nil, nil)
	wantBuckets(t, "new key", got, []bucket{{Hour: "10:00", Counts: map[string]int64{keyward.CodeValid: 1}, Total: 1}})
}

func TestRecordUsageSpikes(t *testing.T) {
	u := mustUsageEnv(t, nil)
	e := u.e
	ctx := context.Background()
	key, _ := mustKey(t, e, u.dev, keyward.KeyInput{Name: "spiking"})
	sysKey, _ := mustKey(t, e, u.a.Admin, keyward.KeyInput{Name: "service", OwnerID: u.system.ID})
	gone, _ := mustKey(t, e, u.dev, keyward.KeyInput{Name: "deleted since"})
	if err := e.svc.DeleteKey(ctx, u.dev.p(t), gone.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(13 * time.Minute)
	since := e.clock.Now()
	minute := t0.Add(12 * time.Minute)
	if err := e.svc.RecordUsageSpikes(ctx, []keyward.UsageSpike{
		{Key: key, Minute: minute, Count: 500, Average: 10.256},
		{Key: sysKey, Minute: minute.In(time.FixedZone("CET", 3600)), Count: 1200, Average: 99.994},
		{Key: gone, Minute: minute, Count: 150, Average: 0},
	}); err != nil {
		t.Fatalf("RecordUsageSpikes: %v", err)
	}
	system := keyward.Ref{Type: keyward.ActorSystem, ID: "system", Name: "keyward"}
	spike := func(k *keyward.Key, count int64, avg float64) seenEvent {
		return seenEvent{Action: keyward.ActionKeyUsageSpike, Actor: system,
			Target: keyward.Ref{Type: keyward.TargetKey, ID: k.ID, Name: k.Name}, TargetOwnerID: k.OwnerID,
			Details: map[string]any{"minute": "2026-11-22T10:12:00Z", "verifications": count, "average_per_minute": avg}}
	}
	events := eventsSince(t, e, u.a.ID, since)
	// Newest first; all three at the same time, so compare as a set by target.
	byTarget := map[string]*keyward.Event{}
	for _, ev := range events {
		byTarget[ev.Target.ID] = ev
		if !ev.Time.Equal(since) {
			t.Errorf("event %s at %v, want %v", ev.Action, ev.Time, since)
		}
	}
	for _, w := range []seenEvent{spike(key, 500, 10.26), spike(sysKey, 1200, 99.99), spike(gone, 150, 0)} {
		ev := byTarget[w.Target.ID]
		if ev == nil {
			t.Errorf("no event for %s", w.Target.Name)
			continue
		}
		if diff := diffEvents(t, []seenEvent{w}, []*keyward.Event{ev}); diff != "" {
			t.Errorf("%s (-want +got):\n%s", w.Target.Name, diff)
		}
	}
	if len(events) != 3 {
		t.Errorf("%d events, want 3", len(events))
	}

	// Who sees them: the owner its keys', an administrator all, nobody else.
	seenBy := func(c *caller) map[string]bool {
		t.Helper()
		page, err := e.svc.ListEvents(ctx, c.p(t), keyward.EventQuery{Action: keyward.ActionKeyUsageSpike})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, ev := range page.Events {
			out[ev.Target.ID] = true
		}
		return out
	}
	for _, tc := range []struct {
		c    *caller
		want map[string]bool
	}{
		{u.dev, map[string]bool{key.ID: true, gone.ID: true}},
		{u.a.Admin, map[string]bool{key.ID: true, sysKey.ID: true, gone.ID: true}},
		{u.plain, map[string]bool{}},
		{mustTenant(t, e, "Other").Admin, map[string]bool{}},
	} {
		if diff := cmp.Diff(tc.want, seenBy(tc.c)); diff != "" {
			t.Errorf("spike events seen by %s (-want +got):\n%s", tc.c.name, diff)
		}
	}

	// Nothing to record is not an error and records nothing.
	if err := e.svc.RecordUsageSpikes(ctx, nil); err != nil {
		t.Errorf("RecordUsageSpikes(nil): %v", err)
	}
	if n := len(eventsSince(t, e, u.a.ID, since)); n != 3 {
		t.Errorf("%d events after an empty call, want 3", n)
	}
}

// TestUsageSpikeEndToEnd: verifications through the service, a recorder
// watching them, and the key.usage_spike event an administrator reads.
func TestUsageSpikeEndToEnd(t *testing.T) {
	cfg := usage.SpikeConfig{MinPerMinute: 100, Factor: 10, Warmup: 10, Cooldown: time.Hour}
	u := mustUsageEnv(t, &cfg)
	e := u.e
	ctx := context.Background()
	key, secret := mustKey(t, e, u.dev, keyward.KeyInput{Name: "suddenly busy"})
	_, steady := mustKey(t, e, u.dev, keyward.KeyInput{Name: "steady"})
	since := e.clock.Now()
	// useFor verifies secret n times spread over [from, from+spread) of the minute.
	useFor := func(minute, n int, secret string, from, spread time.Duration) {
		t.Helper()
		start := t0.Add(time.Duration(minute)*time.Minute + from)
		for i := range n {
			e.clock.Advance(start.Add(spread * time.Duration(i) / time.Duration(n)).Sub(e.clock.Now()))
			if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeValid {
				t.Fatalf("minute %d: %s", minute, c)
			}
		}
	}
	for m := range 12 {
		useFor(m, 10, secret, 0, 50*time.Second)
		useFor(m, 10, steady, 50*time.Second, 9*time.Second)
		u.flush(t)
	}
	useFor(12, 300, secret, 0, 50*time.Second)
	useFor(12, 10, steady, 50*time.Second, 9*time.Second)
	u.flush(t)
	if n := len(allEvents(t, e, u.a.ID, keyward.EventFilter{Action: keyward.ActionKeyUsageSpike})); n != 0 {
		t.Fatalf("%d spike events before the burst minute ended", n)
	}
	e.clock.Advance(t0.Add(13 * time.Minute).Sub(e.clock.Now()))
	u.flush(t)
	u.flush(t)

	events := allEvents(t, e, u.a.ID, keyward.EventFilter{Action: keyward.ActionKeyUsageSpike, Since: &since})
	if len(events) != 1 {
		t.Fatalf("%d spike events, want 1: %s", len(events), dump(events))
	}
	ev := events[0]
	if ev.Target.ID != key.ID || ev.TargetOwnerID != key.OwnerID || ev.Actor.Type != keyward.ActorSystem {
		t.Errorf("spike event %s", dump(ev))
	}
	if ev.Details["minute"] != "2026-11-22T10:12:00Z" || ev.Details["verifications"] != float64(300) ||
		ev.Details["average_per_minute"] != float64(10) {
		t.Errorf("spike details %v, want minute 10:12, 300 verifications, 10 a minute", ev.Details)
	}
	page, err := e.svc.ListEvents(ctx, u.dev.p(t), keyward.EventQuery{Action: keyward.ActionKeyUsageSpike})
	if err != nil || len(page.Events) != 1 {
		t.Errorf("the owner sees %v spike events (%v), want 1", page, err)
	}
	_, _, got := keyUsage(t, e, u.dev, key.ID, nil, nil)
	wantBuckets(t, "the busy key", got, []bucket{{Hour: "10:00", Counts: map[string]int64{keyward.CodeValid: 12*10 + 300}, Total: 420}})
}
