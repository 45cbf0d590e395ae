package keyward_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward"
)

var fixedNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func timePtr(t time.Time) *time.Time { return &t }

func TestKeyStatus(t *testing.T) {
	past := timePtr(fixedNow.Add(-time.Hour))
	exactly := timePtr(fixedNow)
	justAfter := timePtr(fixedNow.Add(time.Microsecond))
	future := timePtr(fixedNow.Add(time.Hour))
	revoked := timePtr(fixedNow.Add(-2 * time.Hour))
	for _, c := range []struct {
		name      string
		revokedAt *time.Time
		expiresAt *time.Time
		disabled  bool
		want      string
	}{
		{"active, never expires", nil, nil, false, keyward.StatusActive},
		{"active, expires later", nil, future, false, keyward.StatusActive},
		{"active, expires in a microsecond", nil, justAfter, false, keyward.StatusActive},
		{"expired at exactly expires_at", nil, exactly, false, keyward.StatusExpired},
		{"expired before", nil, past, false, keyward.StatusExpired},
		{"inactive, never expires", nil, nil, true, keyward.StatusInactive},
		{"inactive, expires later", nil, future, true, keyward.StatusInactive},
		{"inactive then expired exactly", nil, exactly, true, keyward.StatusExpired},
		{"inactive then expired", nil, past, true, keyward.StatusExpired},
		{"revoked, never expires", revoked, nil, false, keyward.StatusRevoked},
		{"revoked, expires later", revoked, future, false, keyward.StatusRevoked},
		{"revoked wins over expired exactly", revoked, exactly, false, keyward.StatusRevoked},
		{"revoked wins over expired", revoked, past, false, keyward.StatusRevoked},
		{"revoked wins over inactive", revoked, nil, true, keyward.StatusRevoked},
		{"revoked wins over inactive and future", revoked, future, true, keyward.StatusRevoked},
		{"revoked wins over inactive and expired", revoked, past, true, keyward.StatusRevoked},
	} {
		k := &keyward.Key{RevokedAt: c.revokedAt, ExpiresAt: c.expiresAt, Disabled: c.disabled}
		if got := k.Status(fixedNow); got != c.want {
			t.Errorf("%s: Status = %q, want %q", c.name, got, c.want)
		}
		wantLive := c.want == keyward.StatusActive || c.want == keyward.StatusInactive
		if got := k.Live(fixedNow); got != wantLive {
			t.Errorf("%s: Live = %v, want %v", c.name, got, wantLive)
		}
	}
}

// Status depends only on stored state and the clock: the same key moves to
// expired as time passes, whatever it was.
func TestKeyStatusFollowsTheClock(t *testing.T) {
	k := &keyward.Key{ExpiresAt: timePtr(fixedNow), Disabled: true}
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{fixedNow.Add(-time.Microsecond), keyward.StatusInactive},
		{fixedNow, keyward.StatusExpired},
		{fixedNow.Add(24 * time.Hour), keyward.StatusExpired},
	} {
		if got := k.Status(c.at); got != c.want {
			t.Errorf("Status(%v) = %q, want %q", c.at, got, c.want)
		}
	}
}

func TestJudge(t *testing.T) {
	on := keyward.DefaultSettings()
	on.APIKeysEnabled = true
	off := keyward.DefaultSettings()
	past, future := timePtr(fixedNow.Add(-time.Hour)), timePtr(fixedNow.Add(time.Hour))
	active := func(role string, scopes ...string) *keyward.Key {
		return &keyward.Key{Role: role, Scopes: scopes, ExpiresAt: future}
	}
	revoked := &keyward.Key{Role: keyward.KeyRoleAdmin, RevokedAt: past, ExpiresAt: past, Disabled: true}
	expired := &keyward.Key{Role: keyward.KeyRoleAdmin, ExpiresAt: past, Disabled: true}
	inactive := &keyward.Key{Role: keyward.KeyRoleAdmin, Disabled: true}
	admin := keyward.VerifyInput{RequireRole: keyward.KeyRoleAdmin}
	readonly := keyward.VerifyInput{RequireRole: keyward.KeyRoleReadonly}
	scopes := func(s ...string) keyward.VerifyInput { return keyward.VerifyInput{RequireScopes: s} }
	for _, c := range []struct {
		name string
		key  *keyward.Key
		set  keyward.Settings
		in   keyward.VerifyInput
		want string
	}{
		{"keys off wins over active", active(keyward.KeyRoleAdmin), off, keyward.VerifyInput{}, keyward.CodeKeysDisabled},
		{"keys off wins over revoked", revoked, off, keyward.VerifyInput{}, keyward.CodeKeysDisabled},
		{"keys off wins over expired", expired, off, keyward.VerifyInput{}, keyward.CodeKeysDisabled},
		{"keys off wins over inactive", inactive, off, keyward.VerifyInput{}, keyward.CodeKeysDisabled},
		{"keys off wins over forbidden", active(keyward.KeyRoleReadonly), off, admin, keyward.CodeKeysDisabled},
		{"revoked", revoked, on, keyward.VerifyInput{}, keyward.CodeRevoked},
		{"revoked wins over forbidden", revoked, on, scopes("missing"), keyward.CodeRevoked},
		{"expired", expired, on, keyward.VerifyInput{}, keyward.CodeExpired},
		{"expired wins over forbidden", expired, on, scopes("missing"), keyward.CodeExpired},
		{"inactive", inactive, on, keyward.VerifyInput{}, keyward.CodeInactive},
		{"inactive wins over forbidden", &keyward.Key{Role: keyward.KeyRoleReadonly, Disabled: true}, on, admin, keyward.CodeInactive},
		{"valid, nothing required", active(keyward.KeyRoleReadonly), on, keyward.VerifyInput{}, keyward.CodeValid},
		{"valid, never expires", &keyward.Key{Role: keyward.KeyRoleReadonly}, on, keyward.VerifyInput{}, keyward.CodeValid},
		{"admin required, admin key", active(keyward.KeyRoleAdmin), on, admin, keyward.CodeValid},
		{"admin required, readonly key", active(keyward.KeyRoleReadonly), on, admin, keyward.CodeForbidden},
		{"readonly required, readonly key", active(keyward.KeyRoleReadonly), on, readonly, keyward.CodeValid},
		{"readonly required, admin key", active(keyward.KeyRoleAdmin), on, readonly, keyward.CodeValid},
		{"scopes subset", active(keyward.KeyRoleReadonly, "a", "b", "c"), on, scopes("c", "a"), keyward.CodeValid},
		{"scopes equal", active(keyward.KeyRoleReadonly, "a", "b"), on, scopes("a", "b"), keyward.CodeValid},
		{"scopes repeated", active(keyward.KeyRoleReadonly, "a"), on, scopes("a", "a"), keyward.CodeValid},
		{"no scopes required, none held", active(keyward.KeyRoleReadonly), on, scopes(), keyward.CodeValid},
		{"one scope missing", active(keyward.KeyRoleReadonly, "a", "b"), on, scopes("a", "x"), keyward.CodeForbidden},
		{"no scopes held", active(keyward.KeyRoleAdmin), on, scopes("a"), keyward.CodeForbidden},
		{"scopes are case-sensitive", active(keyward.KeyRoleReadonly, "invoices:read"), on, scopes("Invoices:read"), keyward.CodeForbidden},
		{"scope prefix is not the scope", active(keyward.KeyRoleReadonly, "invoices"), on, scopes("invoices:read"), keyward.CodeForbidden},
		{"admin and scopes", active(keyward.KeyRoleAdmin, "a"), on, keyward.VerifyInput{RequireRole: keyward.KeyRoleAdmin, RequireScopes: []string{"a"}}, keyward.CodeValid},
		{"admin ok, scopes short", active(keyward.KeyRoleAdmin, "a"), on, keyward.VerifyInput{RequireRole: keyward.KeyRoleAdmin, RequireScopes: []string{"b"}}, keyward.CodeForbidden},
	} {
		if got := keyward.Judge(c.key, c.set, c.in, fixedNow); got != c.want {
			t.Errorf("%s: Judge = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestCheckVerifyInput(t *testing.T) {
	many := make([]string, 101)
	for i := range many {
		many[i] = "s"
	}
	for _, c := range []struct {
		name string
		in   keyward.VerifyInput
		want string
	}{
		{"nothing", keyward.VerifyInput{}, ""},
		{"admin", keyward.VerifyInput{RequireRole: "admin"}, ""},
		{"readonly", keyward.VerifyInput{RequireRole: "readonly"}, ""},
		{"unknown role", keyward.VerifyInput{RequireRole: "owner"}, keyward.EInvalid},
		{"upper-case role", keyward.VerifyInput{RequireRole: "ADMIN"}, keyward.EInvalid},
		{"100 scopes", keyward.VerifyInput{RequireScopes: many[:100]}, ""},
		{"101 scopes", keyward.VerifyInput{RequireScopes: many}, keyward.EInvalid},
	} {
		if got := keyward.ErrorCode(keyward.CheckVerifyInput(c.in)); got != c.want {
			t.Errorf("%s: CheckVerifyInput code %q, want %q", c.name, got, c.want)
		}
	}
}

func TestSettingsMaxKeysFor(t *testing.T) {
	s := keyward.Settings{MaxKeysPerUser: 3, MaxKeysPerServiceUser: 7}
	for _, c := range []struct {
		kind string
		want int
	}{
		{keyward.KindUser, 3},
		{keyward.KindSystem, 7},
	} {
		if got := s.MaxKeysFor(c.kind); got != c.want {
			t.Errorf("MaxKeysFor(%q) = %d, want %d", c.kind, got, c.want)
		}
	}
}

func TestDefaultSettings(t *testing.T) {
	want := keyward.Settings{APIKeysEnabled: false, MaxExpirationDays: nil, MaxKeysPerUser: 5,
		MaxKeysPerServiceUser: 10, ExpiryNoticeDays: 14, KeyPrefix: "kw"}
	if diff := cmp.Diff(want, keyward.DefaultSettings()); diff != "" {
		t.Errorf("DefaultSettings (-want +got):\n%s", diff)
	}
}

func TestErrorCode(t *testing.T) {
	refusal := keyward.Errorf(keyward.ENotRevocable, "Unable to Revoke API Key: %s", "revoked")
	for _, c := range []struct {
		name              string
		err               error
		wantCode, wantMsg string
	}{
		{"nil", nil, "", "internal error"},
		{"refusal", refusal, keyward.ENotRevocable, "Unable to Revoke API Key: revoked"},
		{"wrapped refusal", wrapErr{refusal}, keyward.ENotRevocable, "Unable to Revoke API Key: revoked"},
		{"other error", errString("disk on fire at /var/lib/secret"), keyward.EInternal, "internal error"},
	} {
		if got := keyward.ErrorCode(c.err); got != c.wantCode {
			t.Errorf("%s: ErrorCode = %q, want %q", c.name, got, c.wantCode)
		}
		if c.err == nil {
			continue
		}
		if got := keyward.ErrorMessage(c.err); got != c.wantMsg {
			t.Errorf("%s: ErrorMessage = %q, want %q", c.name, got, c.wantMsg)
		}
		if strings.Contains(keyward.ErrorMessage(c.err), "/var/lib") {
			t.Errorf("%s: an internal detail reaches the message", c.name)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

type wrapErr struct{ err error }

func (w wrapErr) Error() string { return "wrapped: " + w.err.Error() }
func (w wrapErr) Unwrap() error { return w.err }
