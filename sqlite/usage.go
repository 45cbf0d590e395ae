package sqlite

import (
	"context"
	"time"

	"github.com/keyward/keyward"
)

var (
	// The SELECT from keys drops counts of keys deleted since they were counted.
	qAddUsage = writeQuery(`INSERT INTO key_usage (key_id, hour, code, count)
		SELECT id, ?, ?, ? FROM keys WHERE id = ?
		ON CONFLICT (key_id, hour, code) DO UPDATE SET count = count + excluded.count`)
	qKeyUsage = readQuery(`SELECT u.hour, u.code, u.count FROM key_usage u JOIN keys k ON k.id = u.key_id
		WHERE k.tenant_id = ? AND u.key_id = ? AND u.hour >= ? AND u.hour < ?
		ORDER BY u.hour, u.code`)
)

func (t *tx) AddUsage(ctx context.Context, counts []keyward.UsageCount) error {
	if len(counts) == 0 {
		return nil
	}
	s, err := t.prepare(ctx, qAddUsage)
	if err != nil {
		return wrap("add usage", err)
	}
	for _, c := range counts {
		if _, err := s.ExecContext(ctx, micros(c.Hour), c.Code, c.Count, c.KeyID); err != nil {
			return wrap("add usage", err)
		}
	}
	return nil
}

func (t *tx) KeyUsage(ctx context.Context, tenantID, keyID string, from, to time.Time) ([]keyward.UsageCount, error) {
	rows, err := t.query(ctx, qKeyUsage, tenantID, keyID, micros(from), micros(to))
	if err != nil {
		return nil, wrap("key usage", err)
	}
	return collect(rows, "key usage", func(r scanner) (keyward.UsageCount, error) {
		c := keyward.UsageCount{KeyID: keyID}
		var hour int64
		err := r.Scan(&hour, &c.Code, &c.Count)
		c.Hour = fromMicros(hour)
		return c, err
	})
}
