package keyward_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward"
)

// TestSettingsBounds checks every field's bounds; a refused patch changes nothing.
func TestSettingsBounds(t *testing.T) {
	ctx := context.Background()
	e := mustService(t)
	a := mustTenant(t, e, "Acme")
	set := func(v *int) keyward.OptionalInt { return keyward.OptionalInt{Set: true, Value: v} }
	for _, c := range []struct {
		name  string
		patch keyward.SettingsPatch
		want  string
	}{
		{"max_expiration_days 0", keyward.SettingsPatch{MaxExpirationDays: set(ptr(0))}, keyward.EInvalid},
		{"max_expiration_days -1", keyward.SettingsPatch{MaxExpirationDays: set(ptr(-1))}, keyward.EInvalid},
		{"max_expiration_days 1", keyward.SettingsPatch{MaxExpirationDays: set(ptr(1))}, ok},
		{"max_expiration_days 36500", keyward.SettingsPatch{MaxExpirationDays: set(ptr(36500))}, ok},
		{"max_expiration_days null", keyward.SettingsPatch{MaxExpirationDays: set(nil)}, ok},
		{"max_keys_per_user 0", keyward.SettingsPatch{MaxKeysPerUser: ptr(0)}, keyward.EInvalid},
		{"max_keys_per_user -1", keyward.SettingsPatch{MaxKeysPerUser: ptr(-1)}, keyward.EInvalid},
		{"max_keys_per_user 1", keyward.SettingsPatch{MaxKeysPerUser: ptr(1)}, ok},
		{"max_keys_per_user 1000", keyward.SettingsPatch{MaxKeysPerUser: ptr(1000)}, ok},
		{"max_keys_per_user 1001", keyward.SettingsPatch{MaxKeysPerUser: ptr(1001)}, keyward.EInvalid},
		{"max_keys_per_service_user 0", keyward.SettingsPatch{MaxKeysPerServiceUser: ptr(0)}, keyward.EInvalid},
		{"max_keys_per_service_user 1", keyward.SettingsPatch{MaxKeysPerServiceUser: ptr(1)}, ok},
		{"max_keys_per_service_user 1000", keyward.SettingsPatch{MaxKeysPerServiceUser: ptr(1000)}, ok},
		{"max_keys_per_service_user 1001", keyward.SettingsPatch{MaxKeysPerServiceUser: ptr(1001)}, keyward.EInvalid},
		{"expiry_notice_days -1", keyward.SettingsPatch{ExpiryNoticeDays: ptr(-1)}, keyward.EInvalid},
		{"expiry_notice_days 0", keyward.SettingsPatch{ExpiryNoticeDays: ptr(0)}, ok},
		{"expiry_notice_days 365", keyward.SettingsPatch{ExpiryNoticeDays: ptr(365)}, ok},
		{"expiry_notice_days 366", keyward.SettingsPatch{ExpiryNoticeDays: ptr(366)}, keyward.EInvalid},
		{"key_prefix empty", keyward.SettingsPatch{KeyPrefix: ptr("")}, keyward.EInvalid},
		{"key_prefix of 1", keyward.SettingsPatch{KeyPrefix: ptr("a")}, keyward.EInvalid},
		{"key_prefix of 2", keyward.SettingsPatch{KeyPrefix: ptr("ab")}, ok},
		{"key_prefix of 12", keyward.SettingsPatch{KeyPrefix: ptr("abcdefghij12")}, ok},
		{"key_prefix of 13", keyward.SettingsPatch{KeyPrefix: ptr("abcdefghij123")}, keyward.EInvalid},
		{"key_prefix upper case", keyward.SettingsPatch{KeyPrefix: ptr("KW")}, keyward.EInvalid},
		{"key_prefix underscore", keyward.SettingsPatch{KeyPrefix: ptr("k_w")}, keyward.EInvalid},
		{"key_prefix dash", keyward.SettingsPatch{KeyPrefix: ptr("k-w")}, keyward.EInvalid},
		{"key_prefix unicode", keyward.SettingsPatch{KeyPrefix: ptr("ké")}, keyward.EInvalid},
		{"a bad field spoils the patch", keyward.SettingsPatch{ExpiryNoticeDays: ptr(1), MaxKeysPerUser: ptr(0)}, keyward.EInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := a.Admin.p(t)
			before, err := e.svc.GetSettings(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Second)
			at := e.clock.Now()
			got, err := e.svc.UpdateSettings(ctx, p, c.patch)
			wantCode(t, err, c.want)
			after, err2 := e.svc.GetSettings(ctx, p)
			if err2 != nil {
				t.Fatal(err2)
			}
			evs := eventsSince(t, e, a.ID, at)
			if err != nil {
				if diff := cmp.Diff(before, after); diff != "" {
					t.Errorf("a refused patch changed the settings (-before +after):\n%s", diff)
				}
				if len(evs) != 0 {
					t.Errorf("a refused patch wrote %d events", len(evs))
				}
				return
			}
			if diff := cmp.Diff(got, after); diff != "" {
				t.Errorf("returned settings differ from stored (-returned +stored):\n%s", diff)
			}
			if diff := cmp.Diff(applyPatch(before, c.patch), after); diff != "" {
				t.Errorf("settings after the patch (-want +got):\n%s", diff)
			}
			if !cmp.Equal(before, after) && (len(evs) != 1 || evs[0].Action != keyward.ActionSettingsUpdated) {
				t.Errorf("a change wrote %d events, want one settings.updated", len(evs))
			}
		})
	}
}

// applyPatch is what a patch should do, written apart from the service.
func applyPatch(s keyward.Settings, p keyward.SettingsPatch) keyward.Settings {
	if p.APIKeysEnabled != nil {
		s.APIKeysEnabled = *p.APIKeysEnabled
	}
	if p.MaxExpirationDays.Set {
		s.MaxExpirationDays = p.MaxExpirationDays.Value
	}
	if p.MaxKeysPerUser != nil {
		s.MaxKeysPerUser = *p.MaxKeysPerUser
	}
	if p.MaxKeysPerServiceUser != nil {
		s.MaxKeysPerServiceUser = *p.MaxKeysPerServiceUser
	}
	if p.ExpiryNoticeDays != nil {
		s.ExpiryNoticeDays = *p.ExpiryNoticeDays
	}
	if p.KeyPrefix != nil {
		s.KeyPrefix = *p.KeyPrefix
	}
	return s
}

// TestSettingsPatchSemantics: absent fields stay, null clears
// max_expiration_days, and every reader of the tenant sees the result.
func TestSettingsPatchSemantics(t *testing.T) {
	ctx := context.Background()
	e := mustService(t)
	a := mustTenant(t, e, "Acme")
	plain := mustPerson(t, e, a.Admin, "plain@acme.example", true)
	got := mustSettings(t, e, a.Admin, keyward.SettingsPatch{MaxExpirationDays: keyward.OptionalInt{Set: true, Value: ptr(90)},
		MaxKeysPerUser: ptr(7), MaxKeysPerServiceUser: ptr(9), ExpiryNoticeDays: ptr(3), KeyPrefix: ptr("acme")})
	want := keyward.Settings{APIKeysEnabled: true, MaxExpirationDays: ptr(90), MaxKeysPerUser: 7, MaxKeysPerServiceUser: 9,
		ExpiryNoticeDays: 3, KeyPrefix: "acme"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after a full patch (-want +got):\n%s", diff)
	}
	// Absent: nothing changes.
	got = mustSettings(t, e, a.Admin, keyward.SettingsPatch{ExpiryNoticeDays: ptr(0)})
	want.ExpiryNoticeDays = 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after a one-field patch (-want +got):\n%s", diff)
	}
	// Null clears the maximum expiry.
	got = mustSettings(t, e, a.Admin, keyward.SettingsPatch{MaxExpirationDays: keyward.OptionalInt{Set: true}})
	want.MaxExpirationDays = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after null (-want +got):\n%s", diff)
	}
	read, err := e.svc.GetSettings(ctx, plain.p(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, read); diff != "" {
		t.Errorf("settings a plain user reads (-want +got):\n%s", diff)
	}
	// Caches are told of every change of settings.
	var tenants []string
	for _, c := range e.changes {
		if c.TenantID != "" {
			tenants = append(tenants, c.TenantID)
		}
	}
	if len(tenants) < 3 || tenants[len(tenants)-1] != a.ID {
		t.Errorf("settings changes told to caches: %v", tenants)
	}
}

// TestAPIKeysSwitch: turning the tenant's keys off stops creation,
// verification and API authentication at once for every key; sessions go on;
// turning it on again restores every key as it was.
func TestAPIKeysSwitch(t *testing.T) {
	ctx := context.Background()
	e := mustService(t)
	a := mustTenant(t, e, "Acme")
	b := mustTenant(t, e, "Globex")
	dev := mustPerson(t, e, a.Admin, "dev@acme.example", true, keyward.RoleDeveloper)
	_, devSecret := mustKey(t, e, dev, keyward.KeyInput{Name: "dev"})
	mustSettings(t, e, a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(false)})

	_, _, err := e.svc.CreateKey(ctx, dev.p(t), keyward.KeyInput{Name: "x"})
	wantCode(t, err, keyward.EKeysDisabled)
	for _, s := range []string{devSecret, a.AdminKey.cred} {
		if v, _ := e.svc.Verify(ctx, keyward.VerifyInput{Key: s}); v.Code != keyward.CodeKeysDisabled {
			t.Errorf("Verify with keys off = %s", v.Code)
		}
		_, err := e.svc.Authenticate(ctx, s)
		wantCode(t, err, keyward.EUnauthenticated)
	}
	// The other tenant is not affected.
	if _, err := e.svc.Authenticate(ctx, b.AdminKey.cred); err != nil {
		t.Errorf("another tenant's key: %v", err)
	}
	// Sessions still work, so the admin can turn keys back on.
	mustSettings(t, e, a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(true)})
	for _, s := range []string{devSecret, a.AdminKey.cred} {
		if v, _ := e.svc.Verify(ctx, keyward.VerifyInput{Key: s}); v.Code != keyward.CodeValid {
			t.Errorf("Verify with keys back on = %s", v.Code)
		}
	}
	mustKey(t, e, dev, keyward.KeyInput{Name: "after"})

	// A new tenant's keys are off until an administrator turns them on; the
	// switch is off in DefaultSettings and Bootstrap turns it on.
	if got := b.Admin.p(t).Tenant.Settings.APIKeysEnabled; !got {
		t.Error("a bootstrapped tenant's keys are off")
	}
}
