package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/keyward/keyward"
)

var (
	qInsertSession = writeQuery(`INSERT INTO sessions (id, tenant_id, user_id, hash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`)
	qSessionByHash = readQuery(`SELECT id, tenant_id, user_id, hash, created_at, expires_at
		FROM sessions WHERE hash = ?`)
	qDeleteSession = writeQuery(`DELETE FROM sessions WHERE id = ?`)
)

func (t *tx) CreateSession(ctx context.Context, s *keyward.Session) error {
	if s.ID == "" {
		return errors.New("sqlite: create session: empty id")
	}
	_, err := t.exec(ctx, qInsertSession, s.ID, s.TenantID, s.UserID, s.Hash,
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
	err := t.queryRow(ctx, qSessionByHash, hash).Scan(&s.ID, &s.TenantID, &s.UserID, &s.Hash,
		&created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.ENotFound, "session not found")
	}
	if err != nil {
		return nil, wrap("read session", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &s, nil
}

func (t *tx) DeleteSession(ctx context.Context, id string) error {
	res, err := t.exec(ctx, qDeleteSession, id)
	if err != nil {
		return wrap("delete session", err)
	}
	return mustChange("delete session", res, "session not found")
}
