package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
)

const (
	qInsertSession = `INSERT INTO sessions (id, tenant_id, user_id, hash, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`
	qSessionByHash = `SELECT id, tenant_id, user_id, hash, created_at, expires_at
		FROM sessions WHERE hash = $1`
	qDeleteSession = `DELETE FROM sessions WHERE id = $1`
)

func (t *tx) CreateSession(ctx context.Context, s *keyward.Session) error {
	if s.ID == "" {
		return errors.New("postgres: create session: empty id")
	}
	_, err := t.tx.Exec(ctx, qInsertSession, s.ID, s.TenantID, s.UserID, s.Hash,
		micros(s.CreatedAt), micros(s.ExpiresAt))
	switch {
	case isUnique(err):
		return keyward.Errorf(keyward.EConflict, "a session with this id or token already exists")
	case isForeignKey(err):
		return keyward.Errorf(keyward.ENotFound, "user not found")
	case err != nil:
		return wrap("create session", err)
	}
	return nil
}

// SessionByHash finds a session whatever its expiry; the caller judges it.
func (t *tx) SessionByHash(ctx context.Context, hash []byte) (*keyward.Session, error) {
	var (
		s                keyward.Session
		created, expires int64
	)
	err := t.tx.QueryRow(ctx, qSessionByHash, hash).Scan(&s.ID, &s.TenantID, &s.UserID, &s.Hash,
		&created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, keyward.Errorf(keyward.ENotFound, "session not found")
	}
	if err != nil {
		return nil, wrap("read session", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &s, nil
}

func (t *tx) DeleteSession(ctx context.Context, id string) error {
	tag, err := t.tx.Exec(ctx, qDeleteSession, id)
	if err != nil {
		return wrap("delete session", err)
	}
	return mustChange(tag, "session not found")
}
