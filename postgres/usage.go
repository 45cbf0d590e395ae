package postgres

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
)

const (
	// The SELECT from keys drops counts of keys deleted since they were counted.
	qAddUsage = `INSERT INTO key_usage (key_id, hour, code, count)
		SELECT id, $1::bigint, $2::text, $3::bigint FROM keys WHERE id = $4
		ON CONFLICT (key_id, hour, code) DO UPDATE SET count = key_usage.count + excluded.count`
	qKeyUsage = `SELECT u.hour, u.code, u.count FROM key_usage u JOIN keys k ON k.id = u.key_id
		WHERE k.tenant_id = $1 AND u.key_id = $2 AND u.hour >= $3 AND u.hour < $4
		ORDER BY u.hour, u.code`
)

// AddUsage sends one upsert per count in a single round trip, in a fixed
// order so that concurrent flushes lock rows in the same order.
func (t *tx) AddUsage(ctx context.Context, counts []keyward.UsageCount) error {
	if len(counts) == 0 {
		return nil
	}
	sorted := slices.Clone(counts)
	slices.SortFunc(sorted, func(a, b keyward.UsageCount) int {
		return cmp.Or(strings.Compare(a.KeyID, b.KeyID), a.Hour.Compare(b.Hour), strings.Compare(a.Code, b.Code))
	})
	b := &pgx.Batch{}
	for _, c := range sorted {
		b.Queue(qAddUsage, micros(c.Hour), c.Code, c.Count, c.KeyID)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return wrap("add usage", err)
	}
	return nil
}

func (t *tx) KeyUsage(ctx context.Context, tenantID, keyID string, from, to time.Time) ([]keyward.UsageCount, error) {
	rows, err := t.tx.Query(ctx, qKeyUsage, tenantID, keyID, micros(from), micros(to))
	if err != nil {
		return nil, wrap("key usage", err)
	}
	return collect(rows, "key usage", func(r pgx.Row) (keyward.UsageCount, error) {
		c := keyward.UsageCount{KeyID: keyID}
		var hour int64
		if err := r.Scan(&hour, &c.Code, &c.Count); err != nil {
			return c, wrap("read usage", err)
		}
		c.Hour = fromMicros(hour)
		return c, nil
	})
}

// collect reads every row with scan and closes rows.
func collect[T any](rows pgx.Rows, op string, scan func(pgx.Row) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}
