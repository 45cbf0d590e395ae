package keyward

import (
	"context"
	"io"
	"math/big"
	"time"
)

// Principal is the caller of a request, read fresh at every request so that a
// role change, a user deletion or a revocation takes effect at once.
type Principal struct {
	Tenant    *Tenant
	User      *User
	Key       *Key   // set when the caller presented an API key
	SessionID string // set when the caller presented a session token
}

// IsAdmin reports whether the caller administers its tenant.
func (p *Principal) IsAdmin() bool { return p.User.IsAdmin() }

// Actor is how events name this caller.
func (p *Principal) Actor() Actor {
	if p.Key != nil {
		return Actor{Ref: Ref{Type: ActorKey, ID: p.Key.ID, Name: p.Key.Name}, UserID: p.User.ID}
	}
	return Actor{Ref: Ref{Type: ActorUser, ID: p.User.ID, Name: p.User.Name}, UserID: p.User.ID}
}

// canWrite refuses changes through a readonly key: such a key may only read.
func (p *Principal) canWrite() error {
	if p.Key != nil && p.Key.Role != KeyRoleAdmin {
		return Errorf(EPermissionDenied, "a readonly key may only read")
	}
	return nil
}

// sessionTokenPrefix marks session tokens; their length can never pass as a key.
const sessionTokenPrefix = "kwsess_"

var errUnauthenticated = Errorf(EUnauthenticated, "missing or invalid credential")

// Authenticate turns a presented credential (an API key or a session token)
// into a principal. Every failure is the same EUnauthenticated.
func (s *Service) Authenticate(ctx context.Context, credential string) (*Principal, error) {
	if credential == "" || len(credential) > 512 {
		return nil, errUnauthenticated
	}
	now := s.Now()
	if ParseSecret(credential) {
		return s.authenticateKey(ctx, credential, now)
	}
	if len(credential) <= len(sessionTokenPrefix) || credential[:len(sessionTokenPrefix)] != sessionTokenPrefix {
		return nil, errUnauthenticated
	}
	hash := s.hasher.Hash(credential)
	var p *Principal
	err := s.store.View(ctx, func(tx Tx) error {
		sess, err := tx.SessionByHash(ctx, hash)
		if err != nil {
			return err
		}
		if !Equal(sess.Hash, hash) || !now.Before(sess.ExpiresAt) {
			return errUnauthenticated
		}
		p = &Principal{SessionID: sess.ID}
		if p.User, err = tx.UserByID(ctx, sess.TenantID, sess.UserID); err != nil {
			return err
		}
		p.Tenant, err = tx.TenantByID(ctx, sess.TenantID)
		return err
	})
	if err != nil {
		if ErrorCode(err) == ENotFound {
			return nil, errUnauthenticated
		}
		return nil, err
	}
	return p, nil
}

func (s *Service) authenticateKey(ctx context.Context, secret string, now time.Time) (*Principal, error) {
	k, set, err := s.resolve(ctx, secret, now)
	if err != nil {
		return nil, err
	}
	if k == nil || !set.APIKeysEnabled || k.Status(now) != StatusActive {
		return nil, errUnauthenticated
	}
	// The owner and tenant are read fresh: rights take effect at once.
	p := &Principal{Key: k}
	err = s.store.View(ctx, func(tx Tx) (err error) {
		if p.User, err = tx.UserByID(ctx, k.TenantID, k.OwnerID); err != nil {
			return err
		}
		p.Tenant, err = tx.TenantByID(ctx, k.TenantID)
		return err
	})
	if err != nil {
		if ErrorCode(err) == ENotFound {
			return nil, errUnauthenticated
		}
		return nil, err
	}
	if !p.Tenant.Settings.APIKeysEnabled {
		return nil, errUnauthenticated
	}
	s.onUse(k.ID, now)
	return p, nil
}

// LoginResult is a new session: the token is shown once, like a key's secret.
type LoginResult struct {
	Token     string
	ExpiresAt time.Time
	User      *User
}

// Login checks an email and password and opens a session. Wrong email and
// wrong password get the same answer after the same work. tenantID, when
// set, picks among users with the same email in several tenants.
func (s *Service) Login(ctx context.Context, email, password, tenantID string) (*LoginResult, error) {
	if email == "" || password == "" || len(password) > maxPasswordLen {
		CheckPassword(s.dummyHash, password)
		return nil, Errorf(EUnauthenticated, "wrong email or password")
	}
	var users []*User
	err := s.store.View(ctx, func(tx Tx) (err error) {
		users, err = tx.UsersByEmail(ctx, normalizeEmail(email))
		return err
	})
	if err != nil {
		return nil, err
	}
	var match *User
	checked := false
	for _, u := range users {
		if tenantID != "" && u.TenantID != tenantID || u.Kind != KindUser || u.PasswordHash == "" {
			continue
		}
		checked = true
		if CheckPassword(u.PasswordHash, password) {
			match = u
			break
		}
	}
	if !checked {
		CheckPassword(s.dummyHash, password)
	}
	now := s.Now()
	if match == nil {
		// Record the failure in each tenant where the email names a person.
		err := s.store.Update(ctx, func(tx Tx) error {
			for _, u := range users {
				if tenantID != "" && u.TenantID != tenantID {
					continue
				}
				ev := s.event(ctx, now, u.TenantID, ActionAuthFailed, Actor{Ref: Ref{Type: ActorUser, ID: u.ID, Name: u.Name}, UserID: u.ID},
					userRef(u), u.ID, map[string]any{"reason": "wrong password"})
				if err := tx.InsertEvents(ctx, ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return nil, Errorf(EUnauthenticated, "wrong email or password")
	}
	token, err := s.newToken(sessionTokenPrefix)
	if err != nil {
		return nil, err
	}
	sess := &Session{ID: s.newID(PrefixSession), TenantID: match.TenantID, UserID: match.ID,
		Hash: s.hasher.Hash(token), CreatedAt: now, ExpiresAt: now.Add(s.sessionTTL)}
	err = s.store.Update(ctx, func(tx Tx) error {
		if err := tx.CreateSession(ctx, sess); err != nil {
			return err
		}
		actor := Actor{Ref: Ref{Type: ActorUser, ID: match.ID, Name: match.Name}, UserID: match.ID}
		return tx.InsertEvents(ctx, s.event(ctx, now, match.TenantID, ActionSessionCreated, actor, userRef(match), match.ID,
			map[string]any{"session_id": sess.ID, "expires_at": sess.ExpiresAt}))
	})
	if err != nil {
		return nil, err
	}
	return &LoginResult{Token: token, ExpiresAt: sess.ExpiresAt, User: match}, nil
}

func (s *Service) newToken(prefix string) (string, error) {
	var raw [32]byte
	if _, err := io.ReadFull(s.rand, raw[:]); err != nil {
		return "", err
	}
	buf := make([]byte, secretBodyLen)
	encodeBase62(buf, new(big.Int).SetBytes(raw[:]))
	return prefix + string(buf), nil
}

// Logout ends the caller's session.
func (s *Service) Logout(ctx context.Context, p *Principal) error {
	if p.SessionID == "" {
		return Errorf(EInvalid, "the credential is an API key, not a session; revoke or deactivate the key instead")
	}
	return s.store.Update(ctx, func(tx Tx) error { return tx.DeleteSession(ctx, p.SessionID) })
}
