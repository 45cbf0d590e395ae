package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/settle"
)

// A revocation of a whole tenant's keys, or of one owner type's, is written
// as one row of key_revocations, a mark, when it takes at least
// markRevocationsFrom keys, as on SQLite (see sqlite/revocation.go and
// migrations/00006_revocation_marks.sql): row by row, 100,000 keys took 14 s.
// Every read of a key it covers reads the key revoked from the commit on,
// every node's cache is told the keys' digests, and any node writes the
// keys' rows and events afterwards, a chunk a transaction (settle). A read
// of the audit trail settles its tenant's marks first.
const markRevocationsFrom = 1000

// settleChunk is how many covered keys one settling transaction writes.
var settleChunk = 5000

// cover is the condition that mark m covers key k, whose revoked_at is NULL.
const cover = `m.tenant_id = k.tenant_id AND (m.kind = '' OR m.kind = k.owner_kind)
	AND k.seq <= m.max_seq AND (k.expires_at IS NULL OR k.expires_at > m.at)`

const (
	// marked tells whether a mark covers key k (whose revoked_at is NULL).
	marked = `EXISTS (SELECT 1 FROM key_revocations m WHERE ` + cover + `)`

	// markedKeys is the keys table as every read must see it: a key that a
	// mark covers reads revoked by the earliest such mark, at its time and
	// with its actor and reason, and updated then, exactly as settling will
	// write it. PostgreSQL pulls the subquery up into the query that reads
	// from it, so conditions on the keys' own columns keep their indexes.
	markedKeys = `(SELECT k.id, k.tenant_id, k.owner_id, k.name, k.description, k.role, k.scopes, k.meta,
		k.hash, k.start, k.disabled, k.created_at, k.expires_at, k.last_used_at, k.rate_limit, k.rate_window,
		k.owner_kind, k.expiry_recorded, k.seq,
		coalesce(k.revoked_at, m.at) AS revoked_at,
		CASE WHEN m.seq IS NULL THEN k.revoked_by ELSE m.revoked_by END AS revoked_by,
		CASE WHEN m.seq IS NULL THEN k.revoke_reason ELSE m.revoke_reason END AS revoke_reason,
		coalesce(m.at, k.updated_at) AS updated_at
		FROM keys k LEFT JOIN LATERAL (SELECT m.seq, m.at, m.revoked_by, m.revoke_reason
			FROM key_revocations m WHERE k.revoked_at IS NULL AND ` + cover + `
			ORDER BY m.seq LIMIT 1) m ON true)`

	// The set of a mark: every key of the tenant (of one kind) not revoked
	// and not expired at @at that no earlier mark covers; counted first,
	// without sorting, to choose between a mark and a revocation row by row.
	markSet = `k.tenant_id = @tenant AND (@type::text = '' OR k.owner_kind = @type::text)
		AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > @at) AND NOT ` + marked
	qMarkSetSize = `SELECT count(*) FROM keys k WHERE ` + markSet
	qMarkSet     = `SELECT k.id, k.hash FROM keys k WHERE ` + markSet + ` ORDER BY k.id`
	qInsertMark  = `INSERT INTO key_revocations (tenant_id, kind, max_seq, at, revoked_by,
		revoke_reason, action, actor_type, actor_id, actor_name, actor_user_id, ip, user_agent, details)
		VALUES (@tenant, @type, (SELECT coalesce(max(seq), 0) FROM keys), @at, @by, @reason,
			@action, @actor_type, @actor_id, @actor_name, @actor_user_id, @ip, @user_agent, @details::text::jsonb)`
	qTenantMarked = `SELECT EXISTS (SELECT 1 FROM key_revocations WHERE tenant_id = $1)`
	// qTrailMarked tells whether a pending mark of the tenant has events
	// that a read of the audit trail with these filters would show.
	qTrailMarked = `SELECT EXISTS (SELECT 1 FROM key_revocations m WHERE m.tenant_id = @tenant
		AND m.action IS NOT NULL AND (@action::text = '' OR m.action = @action::text)
		AND (@since::bigint IS NULL OR m.at >= @since::bigint) AND (@until::bigint IS NULL OR m.at < @until::bigint)
		AND (@actor::text = '' OR m.actor_id = @actor::text OR m.actor_user_id = @actor::text)
		AND (@key::text = '' OR EXISTS (SELECT 1 FROM keys k WHERE k.tenant_id = @tenant AND k.id = @key::text
			AND k.revoked_at IS NULL AND ` + cover + `))
		AND (@visible::text = '' OR m.actor_user_id = @visible::text OR EXISTS (SELECT 1 FROM keys k
			WHERE k.tenant_id = @tenant AND k.owner_id = @visible::text AND k.revoked_at IS NULL AND ` + cover + `)))`

	// Settling, as on SQLite: the earliest mark, locked (other nodes settle
	// the next, or wait), then its next chunk of keys in seq order (through
	// keys_by_tenant_seq), their events with random IDs, then their rows
	// (which the mark's trigger does not watch).
	qFirstMark = `SELECT seq, tenant_id, kind, max_seq, done_seq, at, revoked_by, revoke_reason
		FROM key_revocations WHERE @tenant::text = '' OR tenant_id = @tenant::text
		ORDER BY seq LIMIT 1 FOR UPDATE`
	settleSet = `k.tenant_id = @tenant AND (@kind::text = '' OR k.owner_kind = @kind::text)
		AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > @at)`
	qSettleEnd = `SELECT count(*), coalesce(max(seq), @done) FROM (SELECT k.seq FROM keys k
		WHERE k.seq > @done AND k.seq <= @max AND ` + settleSet + ` ORDER BY k.seq LIMIT @n) c`
	qSettleEvents = `INSERT INTO events (` + eventColumns + `)
		SELECT 'evt_' || substr(md5(gen_random_uuid()::text), 1, 22), k.tenant_id, m.at, m.action, m.actor_type, m.actor_id, m.actor_name,
			m.actor_user_id, 'key', k.id, k.name, k.owner_id, m.ip, m.user_agent, m.details
		FROM keys k, key_revocations m
		WHERE m.seq = @seq AND m.action IS NOT NULL AND k.seq > @done AND k.seq <= @end AND ` + settleSet
	qSettleRows = `UPDATE keys k SET revoked_at = @at, revoked_by = @by, revoke_reason = @reason, updated_at = @at
		WHERE k.seq > @done AND k.seq <= @end AND ` + settleSet
	qMarkDone   = `UPDATE key_revocations SET done_seq = $1 WHERE seq = $2`
	qDeleteMark = `DELETE FROM key_revocations WHERE seq = $1`
)

// revokeByMark revokes the set of r by a mark, if it holds at least
// markFrom keys, and reports whether it did. The keys table is locked
// against writes first, so that the set and the mark's max_seq are exact:
// a key inserted concurrently commits before the lock or waits for the
// mark's commit, and then has a higher seq.
func (t *tx) revokeByMark(ctx context.Context, r keyward.RevokeSpec) ([]keyward.RevokedKey, bool, error) {
	args := pgx.NamedArgs{"tenant": r.TenantID, "type": r.Type, "at": micros(r.At)}
	var n int
	if err := t.tx.QueryRow(ctx, qMarkSetSize, args).Scan(&n); err != nil {
		return nil, false, wrap("revoke keys: count", err)
	}
	if n < t.markFrom {
		return nil, false, nil
	}
	if ev := r.Event; ev != nil && (!ev.Time.Equal(r.At) || ev.Target.Type != keyward.TargetKey) {
		return nil, false, errors.New("postgres: revoke keys: a mark's event is at the revocation's time and targets the key")
	}
	if _, err := t.tx.Exec(ctx, `LOCK TABLE keys IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return nil, false, wrap("revoke keys: lock", err)
	}
	rows, err := t.tx.Query(ctx, qMarkSet, args)
	if err != nil {
		return nil, false, wrap("revoke keys", err)
	}
	revoked, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keyward.RevokedKey, error) {
		var k keyward.RevokedKey
		err := row.Scan(&k.ID, &k.Hash)
		return k, err
	})
	if err != nil {
		return nil, false, wrap("revoke keys", err)
	}
	args["by"], args["reason"] = nullString(r.By), r.Reason
	for _, c := range []string{"action", "actor_type", "actor_id", "actor_name", "actor_user_id", "ip", "user_agent", "details"} {
		args[c] = nil
	}
	if ev := r.Event; ev != nil {
		details, err := jsonObject(ev.Details)
		if err != nil {
			return nil, false, wrap("revoke keys: event details", err)
		}
		args["action"], args["actor_type"], args["actor_id"] = ev.Action, ev.Actor.Type, ev.Actor.ID
		args["actor_name"], args["actor_user_id"] = ev.Actor.Name, ev.ActorUserID
		args["ip"], args["user_agent"], args["details"] = ev.IP, ev.UserAgent, details
	}
	if _, err := t.tx.Exec(ctx, qInsertMark, args); err != nil {
		return nil, false, wrap("revoke keys: mark", err)
	}
	// No key row changes, so the change trigger announces nothing: the
	// digests are announced here, as it would have.
	digests := make([][]byte, len(revoked))
	for i, k := range revoked {
		digests[i] = k.Hash
	}
	if _, err := t.tx.Exec(ctx, `SELECT keyward_notify_key_digests($1)`, digests); err != nil {
		return nil, false, wrap("revoke keys: announce", err)
	}
	t.marked = true
	return revoked, true, nil
}

// tenantMarked tells whether marks of the tenant wait to be settled.
func (t *tx) tenantMarked(ctx context.Context, tenantID string) (bool, error) {
	var ok bool
	if err := t.tx.QueryRow(ctx, qTenantMarked, tenantID).Scan(&ok); err != nil {
		return false, wrap("read revocation marks", err)
	}
	return ok, nil
}

// settleFor makes sure that no pending mark of the tenant has events that
// a read of the audit trail through f would show: a write transaction
// settles the tenant's marks itself, a read-only one cannot and answers
// settle.Unsettled. A read whose filters leave out every pending mark's events
// (another action, another time, actor, key or owner) does not wait.
func (t *tx) settleFor(ctx context.Context, f keyward.EventFilter) error {
	tenantID := f.TenantID
	args := pgx.NamedArgs{"tenant": tenantID, "action": f.Action, "since": nil, "until": nil,
		"actor": f.ActorID, "key": f.KeyID, "visible": f.VisibleTo}
	if f.Since != nil {
		args["since"] = micros(*f.Since)
	}
	if f.Until != nil {
		args["until"] = micros(*f.Until)
	}
	var pending bool
	if err := t.tx.QueryRow(ctx, qTrailMarked, args).Scan(&pending); err != nil {
		return wrap("read revocation marks", err)
	}
	if !pending {
		return nil
	}
	if !t.write {
		return &settle.Unsettled{TenantID: tenantID}
	}
	for {
		more, err := t.settleChunk(ctx, tenantID, -1)
		if err != nil || !more {
			return err
		}
	}
}

// settleChunk writes up to n keys (all, if n < 0) of the earliest pending
// mark of the tenant (of any tenant if tenantID is ""), and drops the mark
// once all its keys are written. It reports whether a mark was pending.
func (t *tx) settleChunk(ctx context.Context, tenantID string, n int) (bool, error) {
	var (
		seq, maxSeq, done, at int64
		tenant, kind          string
		by, reason            *string
	)
	err := t.tx.QueryRow(ctx, qFirstMark, pgx.NamedArgs{"tenant": tenantID}).Scan(&seq, &tenant, &kind, &maxSeq,
		&done, &at, &by, &reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap("settle revocations", err)
	}
	limit := int64(n)
	if n < 0 {
		limit = maxSeq // every key the mark can cover
	}
	args := pgx.NamedArgs{"tenant": tenant, "kind": kind, "at": at, "done": done, "max": maxSeq, "n": limit,
		"seq": seq, "by": by, "reason": reason}
	var count, end int64
	if err := t.tx.QueryRow(ctx, qSettleEnd, args).Scan(&count, &end); err != nil {
		return false, wrap("settle revocations", err)
	}
	args["end"] = end
	if _, err := t.tx.Exec(ctx, qSettleEvents, args); err != nil {
		return false, wrap("settle revocations: events", err)
	}
	tag, err := t.tx.Exec(ctx, qSettleRows, args)
	if err != nil {
		return false, wrap("settle revocations", err)
	}
	if tag.RowsAffected() != count {
		return false, fmt.Errorf("postgres: settle revocations: wrote %d keys of a chunk of %d", tag.RowsAffected(), count)
	}
	if count < limit {
		_, err = t.tx.Exec(ctx, qDeleteMark, seq)
		t.settled = append(t.settled, tenant)
	} else {
		_, err = t.tx.Exec(ctx, qMarkDone, end, seq)
	}
	if err != nil {
		return false, wrap("settle revocations", err)
	}
	return true, nil
}

// settleChunkTx settles the next chunk of the earliest pending mark of the
// tenant (of any tenant if tenantID is "") in a write transaction of its
// own: the store's settle.Chunk.
func (db *DB) settleChunkTx(ctx context.Context, tenantID string) (more bool, finished []string, err error) {
	err = db.Update(ctx, func(kt keyward.Tx) (err error) {
		t := kt.(*tx)
		more, err = t.settleChunk(ctx, tenantID, settleChunk)
		finished = t.settled
		return err
	})
	return more, finished, err
}
