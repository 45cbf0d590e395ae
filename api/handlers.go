package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// --- sessions and me

// loginRequest is the body of POST /v1/sessions.
type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	TenantID string `json:"tenant_id"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var in loginRequest
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	res, err := s.svc.Login(r.Context(), in.Email, in.Password, in.TenantID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": res.Token, "expires_at": res.ExpiresAt.UTC(), "user": renderUser(res.User)})
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	if err := s.svc.Logout(r.Context(), p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	u, t, k := s.svc.Me(r.Context(), p)
	var key any
	if k != nil {
		key = renderKey(k, s.svc.Now())
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": renderUser(u), "tenant": map[string]string{"id": t.ID, "name": t.Name}, "key": key})
	return nil
}

// decode reads the bounded JSON body into v.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeJSON(body, v, allowEmpty)
}

// --- users

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	size, err := queryInt(r, "page_size")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := s.svc.ListUsers(r.Context(), p, keyward.UserQuery{Q: q.Get("q"), Kind: q.Get("kind"), PageSize: size, PageToken: q.Get("page_token")})
	if err != nil {
		return err
	}
	users := make([]userJSON, len(page.Users))
	for i, u := range page.Users {
		users[i] = renderUser(u)
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users, "next_page_token": nextToken(page.NextPageToken), "total": page.Total})
	return nil
}

// userCreateRequest is the body of POST /v1/users.
type userCreateRequest struct {
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Roles    []string `json:"roles"`
	Licensed *bool    `json:"licensed"`
	Password *string  `json:"password"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	var in userCreateRequest
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	u, err := s.svc.CreateUser(r.Context(), p, keyward.UserInput{Email: in.Email, Name: in.Name, Kind: in.Kind,
		Roles: in.Roles, Licensed: in.Licensed, Password: in.Password})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, renderUser(u))
	return nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	u, err := s.svc.GetUser(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, renderUser(u))
	return nil
}

// userPatchRequest is the body of PATCH /v1/users/{id}. Every field may be
// left out, none may be null.
type userPatchRequest struct {
	Name     optional[string]   `json:"name,omitzero"`
	Roles    optional[[]string] `json:"roles,omitzero"`
	Licensed optional[bool]     `json:"licensed,omitzero"`
	Password optional[string]   `json:"password,omitzero"`
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	var in userPatchRequest
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	u, err := s.svc.UpdateUser(r.Context(), p, r.PathValue("id"), keyward.UserPatch{Name: in.Name.Value, Roles: in.Roles.Value,
		Licensed: in.Licensed.Value, Password: in.Password.Value})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, renderUser(u))
	return nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	if err := s.svc.DeleteUser(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- keys

// keyCreateRequest is the body of POST /v1/keys.
type keyCreateRequest struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	OwnerID     string             `json:"owner_id"`
	Role        string             `json:"role"`
	Scopes      []string           `json:"scopes"`
	Meta        json.RawMessage    `json:"meta"`
	ExpiresAt   *timeField         `json:"expires_at"`
	RateLimit   *keyward.RateLimit `json:"rate_limit"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	var in keyCreateRequest
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	ki := keyward.KeyInput{Name: in.Name, Description: in.Description, OwnerID: in.OwnerID, Role: in.Role,
		Scopes: in.Scopes, Meta: in.Meta, RateLimit: in.RateLimit}
	if in.ExpiresAt != nil {
		ki.ExpiresAt = &in.ExpiresAt.t
	}
	k, secret, err := s.svc.CreateKey(r.Context(), p, ki)
	if err != nil {
		return err
	}
	out := renderKey(k, s.svc.Now())
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	size, err := queryInt(r, "page_size")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := s.svc.ListKeys(r.Context(), p, keyward.KeyQuery{Q: q.Get("q"), Type: q.Get("type"), Status: q.Get("status"),
		OwnerID: q.Get("owner_id"), Sort: q.Get("sort"), PageSize: size, PageToken: q.Get("page_token")})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": renderKeys(page.Keys, s.svc.Now()),
		"next_page_token": nextToken(page.NextPageToken), "total": page.Total})
	return nil
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	k, err := s.svc.GetKey(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, renderKey(k, s.svc.Now()))
	return nil
}

// keyPatchRequest is the body of PATCH /v1/keys/{id}. Every field may be
// left out; only rate_limit may be null (no limit).
type keyPatchRequest struct {
	Name        optional[string]  `json:"name,omitzero"`
	Description optional[string]  `json:"description,omitzero"`
	RateLimit   nullableRateLimit `json:"rate_limit,omitzero"`
}

func (s *Server) updateKey(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	var in keyPatchRequest
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	k, err := s.svc.UpdateKey(r.Context(), p, r.PathValue("id"), keyward.KeyPatch{Name: in.Name.Value, Description: in.Description.Value,
		RateLimit: in.RateLimit.OptionalRateLimit})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, renderKey(k, s.svc.Now()))
	return nil
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	if err := s.svc.DeleteKey(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) keyAction(w http.ResponseWriter, r *http.Request, k *keyward.Key, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, renderKey(k, s.svc.Now()))
	return nil
}

func (s *Server) deactivateKey(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	if err := s.decode(w, r, &struct{}{}, true); err != nil {
		return err
	}
	k, err := s.svc.DeactivateKey(r.Context(), p, r.PathValue("id"))
	return s.keyAction(w, r, k, err)
}

func (s *Server) reactivateKey(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	if err := s.decode(w, r, &struct{}{}, true); err != nil {
		return err
	}
	k, err := s.svc.ReactivateKey(r.Context(), p, r.PathValue("id"))
	return s.keyAction(w, r, k, err)
}

// revokeRequest is the optional body of POST /v1/keys/{id}/revoke.
type revokeRequest struct {
	Reason *string `json:"reason"`
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	var in revokeRequest
	if err := s.decode(w, r, &in, true); err != nil {
		return err
	}
	k, err := s.svc.RevokeKey(r.Context(), p, r.PathValue("id"), in.Reason)
	return s.keyAction(w, r, k, err)
}

// rotateRequest is the optional body of POST /v1/keys/{id}/rotate.
type rotateRequest struct {
	GracePeriodSeconds *int64 `json:"grace_period_seconds"`
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	var in rotateRequest
	if err := s.decode(w, r, &in, true); err != nil {
		return err
	}
	var grace *time.Duration
	if in.GracePeriodSeconds != nil {
		g := *in.GracePeriodSeconds
		if g < 0 || g > int64(1<<62/time.Second) {
			return keyward.Errorf(keyward.EInvalid, "grace_period_seconds is out of range")
		}
		d := time.Duration(g) * time.Second
		grace = &d
	}
	k, secret, err := s.svc.RotateKey(r.Context(), p, r.PathValue("id"), grace)
	if err != nil {
		return err
	}
	out := renderKey(k, s.svc.Now())
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// bulkRevokeRequest is the body of POST /v1/keys/revoke.
type bulkRevokeRequest struct {
	IDs    []string `json:"ids"`
	Type   string   `json:"type"`
	All    bool     `json:"all"`
	Reason *string  `json:"reason"`
}

func (s *Server) bulkRevoke(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	var in bulkRevokeRequest
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	res, err := s.svc.BulkRevoke(r.Context(), p, keyward.BulkRevokeInput{IDs: in.IDs, Type: in.Type, All: in.All, Reason: in.Reason})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": res.Revoked, "failed": res.Failed})
	return nil
}

func (s *Server) keyUsage(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	from, err := queryTime(r, "from")
	if err != nil {
		return err
	}
	to, err := queryTime(r, "to")
	if err != nil {
		return err
	}
	start, end, buckets, err := s.svc.KeyUsage(r.Context(), p, r.PathValue("id"), from, to)
	if err != nil {
		return err
	}
	out := make([]usageBucketJSON, len(buckets))
	for i, b := range buckets {
		out[i] = usageBucketJSON{Hour: b.Hour.UTC(), Counts: b.Counts, Total: b.Total}
	}
	writeJSON(w, http.StatusOK, map[string]any{"key_id": r.PathValue("id"), "from": start, "to": end, "buckets": out})
	return nil
}

type usageBucketJSON struct {
	Hour   time.Time        `json:"hour"`
	Counts map[string]int64 `json:"counts"`
	Total  int64            `json:"total"`
}

// --- settings and events

// settingsPatchRequest is the body of PATCH /v1/settings. Every field may
// be left out; only max_expiration_days may be null (no limit).
type settingsPatchRequest struct {
	APIKeysEnabled        optional[bool]   `json:"api_keys_enabled,omitzero"`
	MaxExpirationDays     nullableInt      `json:"max_expiration_days,omitzero"`
	MaxKeysPerUser        optional[int]    `json:"max_keys_per_user,omitzero"`
	MaxKeysPerServiceUser optional[int]    `json:"max_keys_per_service_user,omitzero"`
	ExpiryNoticeDays      optional[int]    `json:"expiry_notice_days,omitzero"`
	KeyPrefix             optional[string] `json:"key_prefix,omitzero"`
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	set, err := s.svc.GetSettings(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, set)
	return nil
}

func (s *Server) updateSettings(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	var in settingsPatchRequest
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	set, err := s.svc.UpdateSettings(r.Context(), p, keyward.SettingsPatch{APIKeysEnabled: in.APIKeysEnabled.Value,
		MaxExpirationDays: in.MaxExpirationDays.OptionalInt, MaxKeysPerUser: in.MaxKeysPerUser.Value,
		MaxKeysPerServiceUser: in.MaxKeysPerServiceUser.Value, ExpiryNoticeDays: in.ExpiryNoticeDays.Value,
		KeyPrefix: in.KeyPrefix.Value})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, set)
	return nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error {
	size, err := queryInt(r, "page_size")
	if err != nil {
		return err
	}
	since, err := queryTime(r, "since")
	if err != nil {
		return err
	}
	until, err := queryTime(r, "until")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := s.svc.ListEvents(r.Context(), p, keyward.EventQuery{Action: q.Get("action"), KeyID: q.Get("key_id"),
		ActorID: q.Get("actor_id"), Since: since, Until: until, PageSize: size, PageToken: q.Get("page_token")})
	if err != nil {
		return err
	}
	events := make([]eventJSON, len(page.Events))
	for i, e := range page.Events {
		events[i] = renderEvent(e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events, "next_page_token": nextToken(page.NextPageToken), "total": page.Total})
	return nil
}

// --- verification

// verifyRequest is the body of POST /v1/keys/verify.
// verifyBodies are the buffers verification requests are read into.
var verifyBodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putVerifyBody(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		verifyBodies.Put(b)
	}
}

// plainVerifyBody reads the body nearly every verification sends,
// {"key":"<secret>"}, whose secret holds only letters, digits and _, without
// the general decoder; ok is false for anything else, which decodeJSON then
// reads (TestPlainVerifyBodyAgreesWithDecodeJSON).
func plainVerifyBody(body []byte) (key string, ok bool) {
	const prefix, suffix = `{"key":"`, `"}`
	b := bytes.Trim(body, jsonSpace)
	if len(b) < len(prefix)+len(suffix) || string(b[:len(prefix)]) != prefix || string(b[len(b)-len(suffix):]) != suffix {
		return "", false
	}
	v := b[len(prefix) : len(b)-len(suffix)]
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return "", false
		}
	}
	return string(v), true
}

type verifyRequest struct {
	Key           string   `json:"key"`
	RequireRole   string   `json:"require_role"`
	RequireScopes []string `json:"require_scopes"`
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) error {
	bp := verifyBodies.Get().(*bytes.Buffer)
	defer putVerifyBody(bp)
	bp.Reset()
	if _, err := bp.ReadFrom(r.Body); err != nil {
		return bodyReadError(err)
	}
	var in verifyRequest
	if key, ok := plainVerifyBody(bp.Bytes()); ok {
		in.Key = key
	} else if err := decodeJSON(bp.Bytes(), &in, false); err != nil {
		return err
	}
	res, err := s.svc.Verify(r.Context(), keyward.VerifyInput{Key: in.Key, RequireRole: in.RequireRole, RequireScopes: in.RequireScopes})
	if err != nil {
		return err
	}
	s.metrics.verified(res.Code)
	if s.throttled(w, r, res) {
		p := problemFor(r, s.log, keyward.Errorf(keyward.ETooManyRequests, "too many failed verifications from this address; retry later"))
		valid := false
		p.Valid = &valid
		writeProblem(w, p)
		return nil
	}
	writeVerify(w, res)
	return nil
}

// throttled counts a failed verification against the client address and
// reports whether that address is over its limit. Valid keys are never
// throttled, and one address never affects another.
func (s *Server) throttled(w http.ResponseWriter, r *http.Request, res keyward.VerifyResult) bool {
	switch res.Code {
	case keyward.CodeValid, keyward.CodeForbidden, keyward.CodeRateLimited:
		// A working key short of a role or scope, or over its own limit, is
		// not someone guessing keys: it does not count against the address.
		return false
	}
	if retry, over := s.limiter.fail(clientIP(r), time.Now()); over {
		w.Header().Set("Retry-After", retry)
		return true
	}
	return false
}

// forwardAuth answers a gateway's auth subrequest: 200 with the key's
// identity in headers, or 401/403/429 with X-Keyward-Code.
func (s *Server) forwardAuth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in := keyward.VerifyInput{Key: credential(r), RequireRole: q.Get("require_role")}
	if sc := q.Get("require_scopes"); sc != "" {
		for _, v := range strings.Split(sc, ",") {
			if v = strings.TrimSpace(v); v != "" {
				in.RequireScopes = append(in.RequireScopes, v)
			}
		}
	}
	res, err := s.svc.Verify(r.Context(), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.verified(res.Code)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if s.throttled(w, r, res) {
		h.Set("X-Keyward-Code", keyward.CodeRateLimited)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	switch res.Code {
	case keyward.CodeValid:
		k := res.Key
		h.Set("X-Keyward-Key-Id", k.ID)
		h.Set("X-Keyward-Tenant-Id", k.TenantID)
		h.Set("X-Keyward-Owner-Id", k.OwnerID)
		h.Set("X-Keyward-Key-Role", k.Role)
		h.Set("X-Keyward-Key-Scopes", strings.Join(k.Scopes, ","))
		w.WriteHeader(http.StatusOK)
	case keyward.CodeForbidden:
		h.Set("X-Keyward-Code", res.Code)
		w.WriteHeader(http.StatusForbidden)
	case keyward.CodeRateLimited:
		// The key's own limit: its window is when the gateway may retry at
		// the latest (the limiter does not say when the window started).
		retry := 1
		if k := res.Key; k != nil && k.RateLimit != nil && k.RateLimit.WindowSeconds > 1 {
			retry = k.RateLimit.WindowSeconds
		}
		h.Set("X-Keyward-Code", res.Code)
		h.Set("Retry-After", strconv.Itoa(retry))
		w.WriteHeader(http.StatusTooManyRequests)
	default:
		h.Set("X-Keyward-Code", res.Code)
		h.Set("WWW-Authenticate", `Bearer realm="keyward"`)
		w.WriteHeader(http.StatusUnauthorized)
	}
}
