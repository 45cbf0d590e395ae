package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/settle"
)

// A revocation of a whole tenant's keys, or of one owner type's, is written
// as one row of key_revocations, a mark, when it takes markRevocationsFrom
// keys or more: row by row, 100,000 keys and their events were about 150 MB
// of pages and five seconds of holding the writer. The mark commits in a few
// tenths of a second (the keys' IDs and digests are read, for the caches),
// every read of a key it covers reads the key revoked from
// then on, and the store writes the keys' rows and their key.revoked events
// afterwards, a chunk a transaction (internal/settle). See
// migrations/00007_revocation_marks.sql for what a mark covers and for the
// triggers that keep its promises when a covered key is updated or deleted
// first.
//
// A read of the audit trail that could show a pending mark's events waits
// for the tenant's marks to be settled (see settleFor), so it never misses a
// covered key's event; keys read revoked at once. A smaller set is revoked
// row by row in the transaction itself.
const markRevocationsFrom = 1000

// settleChunk is how many covered keys one settling transaction writes:
// small enough that other writes wait for it no longer than a moment,
// large enough that settling 100,000 keys takes seconds, not minutes (each
// chunk touches pages all over the events' indexes, since event IDs are
// random).
var settleChunk = 5000

// coverSQL is the condition that mark m covers key k, whose revoked_at is
// NULL (a mark never covers a key revoked in its row).
func coverSQL(m, k string) string {
	return m + `.tenant_id = ` + k + `.tenant_id AND (` + m + `.kind = '' OR ` + m + `.kind = ` + k + `.owner_kind)
		AND ` + k + `.rowid <= ` + m + `.max_rowid AND (` + k + `.expires_at IS NULL OR ` + k + `.expires_at > ` + m + `.at)`
}

// markOf is one field of the earliest mark that covers key k.
func markOf(field string) string {
	return `(SELECT m.` + field + ` FROM key_revocations m WHERE ` + coverSQL("m", "k") + ` ORDER BY m.seq LIMIT 1)`
}

var (
	// marked tells whether a mark covers key k (whose revoked_at is NULL).
	marked = `EXISTS (SELECT 1 FROM key_revocations m WHERE ` + coverSQL("m", "k") + `)`

	// markedKeys is the keys table as every read must see it: a key that a
	// mark covers reads revoked by the earliest such mark, at its time and
	// with its actor and reason, and updated then, exactly as settling will
	// write it. SQLite flattens it into the query that reads from it, so
	// conditions on the keys' own columns still use their indexes.
	markedKeys = `(SELECT k.rowid AS rowid, k.id AS id, k.tenant_id AS tenant_id, k.owner_id AS owner_id,
		k.name AS name, k.description AS description, k.role AS role, k.scopes AS scopes, k.meta AS meta,
		k.hash AS hash, k.start AS start, k.disabled AS disabled, k.created_at AS created_at,
		k.expires_at AS expires_at, k.last_used_at AS last_used_at, k.rate_limit AS rate_limit,
		k.rate_window AS rate_window, k.owner_kind AS owner_kind, k.expiry_recorded AS expiry_recorded,
		coalesce(k.revoked_at, ` + markOf("at") + `) AS revoked_at,
		CASE WHEN k.revoked_at IS NULL THEN ` + markOf("revoked_by") + ` ELSE k.revoked_by END AS revoked_by,
		CASE WHEN k.revoked_at IS NULL THEN ` + markOf("revoke_reason") + ` ELSE k.revoke_reason END AS revoke_reason,
		CASE WHEN k.revoked_at IS NULL THEN coalesce(` + markOf("at") + `, k.updated_at) ELSE k.updated_at END AS updated_at
		FROM keys k)`
)

// revokableKeys is the set a revocation of all keys takes: every active or
// inactive key of the tenant at :at that no earlier mark covers;
// revokableKeysOfType, of one owner kind.
const (
	revokableKeys = `k.tenant_id = :tenant
		AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > :at)`
	revokableKeysOfType = revokableKeys + ` AND k.owner_kind = :type`
)

var (
	qRevokableKeys       = writeQuery(revokableSQL(revokableKeys))
	qRevokableKeysOfType = writeQuery(revokableSQL(revokableKeysOfType))
	// Row by row: the events, written from the keys themselves, then the
	// update, in the same write transaction (so the set cannot change
	// between them). Neither brings a key's row into Go.
	qRevokeKeysEvents       = writeQuery(revokeEventsSQL(revokableKeys))
	qRevokeKeysEventsOfType = writeQuery(revokeEventsSQL(revokableKeysOfType))
	qRevokeKeys             = writeQuery(revokeSQL(revokableKeys))
	qRevokeKeysOfType       = writeQuery(revokeSQL(revokableKeysOfType))

	qInsertMark = writeQuery(`INSERT INTO key_revocations (tenant_id, kind, max_rowid, at, revoked_by,
		revoke_reason, action, actor_type, actor_id, actor_name, actor_user_id, ip, user_agent, details)
		VALUES (:tenant, :kind, coalesce((SELECT max(rowid) FROM keys), 0), :at, :by, :reason,
			:action, :actor_type, :actor_id, :actor_name, :actor_user_id, :ip, :user_agent, :details)`)
	qTenantMarked = readQuery(`SELECT EXISTS (SELECT 1 FROM key_revocations WHERE tenant_id = ?)`)
	// qTrailMarked tells whether a pending mark of the tenant has events
	// that a read of the audit trail with these filters would show.
	qTrailMarked = readQuery(`SELECT EXISTS (SELECT 1 FROM key_revocations m WHERE m.tenant_id = :tenant
		AND m.action IS NOT NULL AND (:action = '' OR m.action = :action)
		AND (:since IS NULL OR m.at >= :since) AND (:until IS NULL OR m.at < :until)
		AND (:actor = '' OR m.actor_id = :actor OR m.actor_user_id = :actor)
		AND (:key = '' OR EXISTS (SELECT 1 FROM keys k WHERE k.tenant_id = :tenant AND k.id = :key
			AND k.revoked_at IS NULL AND ` + coverSQL("m", "k") + `))
		AND (:visible = '' OR m.actor_user_id = :visible OR EXISTS (SELECT 1 FROM keys k
			WHERE k.tenant_id = :tenant AND k.owner_id = :visible AND k.revoked_at IS NULL AND ` + coverSQL("m", "k") + `)))`)

	// Settling: the earliest mark (of a tenant, or of any), then its next
	// chunk of keys in rowid order, written as a small revocation row by
	// row would write them: their events from the mark's template, then
	// their rows. No earlier mark covers any of them, and the update does
	// not fire the mark's trigger (see 00007_revocation_marks.sql).
	//
	// The keys are found through keys_by_tenant, whose entries are in
	// rowid order within a tenant (through another tenant index each chunk
	// read and sorted the tenant's every key; along the rowids alone, every
	// other tenant's too). Each event's ID comes from the settler's
	// generator (kw_new_id): random, as the contract wants every ID. OR
	// FAIL spares the statement journal, which a failure does not need,
	// since it rolls the whole transaction back.
	qFirstMark = writeQuery(`SELECT seq, tenant_id, kind, max_rowid, done_rowid, at, revoked_by, revoke_reason
		FROM key_revocations WHERE ?1 = '' OR tenant_id = ?1 ORDER BY seq LIMIT 1`)
	qSettleEnd = writeQuery(`SELECT count(*), coalesce(max(rowid), :done) FROM (SELECT k.rowid
		FROM keys k INDEXED BY keys_by_tenant WHERE k.rowid > :done AND k.rowid <= :max AND ` + settleSet + ` ORDER BY k.rowid LIMIT :n)`)
	qSettleEvents = writeQuery(`INSERT OR FAIL INTO events (` + eventColumns + `)
		SELECT kw_new_id(:gen), k.tenant_id, m.at, m.action, m.actor_type, m.actor_id, m.actor_name,
			m.actor_user_id, 'key', k.id, k.name, k.owner_id, m.ip, m.user_agent, m.details
		FROM keys k INDEXED BY keys_by_tenant, key_revocations m
		WHERE m.seq = :seq AND m.action IS NOT NULL AND k.rowid > :done AND k.rowid <= :end AND ` + settleSet)
	qSettleRows = writeQuery(`UPDATE OR FAIL keys AS k INDEXED BY keys_by_tenant SET revoked_at = :at, revoked_by = :by, revoke_reason = :reason,
			updated_at = :at
		WHERE k.rowid > :done AND k.rowid <= :end AND ` + settleSet)
	qMarkDone   = writeQuery(`UPDATE key_revocations SET done_rowid = ? WHERE seq = ?`)
	qDeleteMark = writeQuery(`DELETE FROM key_revocations WHERE seq = ?`)
)

// settleSet is the keys of a mark, given as :tenant, :kind and :at.
const settleSet = `k.tenant_id = :tenant AND (:kind = '' OR k.owner_kind = :kind)
	AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > :at)`

func revokableSQL(set string) string {
	return `SELECT k.id, k.hash FROM keys k WHERE ` + set + ` AND NOT ` + marked + ` ORDER BY k.id`
}

func revokeEventsSQL(set string) string {
	return `INSERT INTO events (` + eventColumns + `)
		SELECT kw_new_id(:gen), k.tenant_id, :time, :action, :actor_type, :actor_id, :actor_name,
			:actor_user_id, :target_type, k.id, k.name, k.owner_id, :ip, :user_agent, :details
		FROM keys k WHERE ` + set + ` AND NOT ` + marked
}

func revokeSQL(set string) string {
	return `UPDATE keys AS k SET revoked_at = :at, revoked_by = :by, revoke_reason = :reason, updated_at = :at
		WHERE ` + set + ` AND NOT ` + marked
}

// RevokeKeys revokes every active or inactive key of the tenant (of one
// owner kind if r.Type is set) at r.At, with r.Event for each when it is set,
// and returns the keys ordered by ID. A large set is revoked by a mark (see
// markRevocationsFrom), a small one row by row, each event's ID from r.NewID
// through kw_new_id.
func (t *tx) RevokeKeys(ctx context.Context, r keyward.RevokeSpec) ([]keyward.RevokedKey, error) {
	if r.Event != nil && r.NewID == nil {
		return nil, errors.New("sqlite: revoke keys: an event without NewID")
	}
	set := []any{sql.Named("at", micros(r.At)), sql.Named("tenant", r.TenantID)}
	qKeys, qEvents, qRevoke := qRevokableKeys, qRevokeKeysEvents, qRevokeKeys
	if r.Type != "" {
		qKeys, qEvents, qRevoke = qRevokableKeysOfType, qRevokeKeysEventsOfType, qRevokeKeysOfType
		set = append(set, sql.Named("type", r.Type))
	}
	rows, err := t.query(ctx, qKeys, set...)
	if err != nil {
		return nil, wrap("revoke keys", err)
	}
	revoked, err := collect(rows, "revoke keys", func(row scanner) (keyward.RevokedKey, error) {
		var k keyward.RevokedKey
		err := row.Scan(&k.ID, &k.Hash)
		return k, err
	})
	if err != nil || len(revoked) == 0 {
		return revoked, err
	}
	var by any
	if r.By != "" {
		by = r.By
	}
	var e [8]any // the event template's columns, NULL without an event
	if ev := r.Event; ev != nil {
		details, err := jsonObject(ev.Details)
		if err != nil {
			return nil, wrap("revoke keys: event details", err)
		}
		e = [8]any{ev.Action, ev.Actor.Type, ev.Actor.ID, ev.Actor.Name, ev.ActorUserID, ev.IP, ev.UserAgent, details}
	}
	if len(revoked) >= t.markFrom {
		if ev := r.Event; ev != nil && (!ev.Time.Equal(r.At) || ev.Target.Type != keyward.TargetKey) {
			return nil, errors.New("sqlite: revoke keys: a mark's event is at the revocation's time and targets the key")
		}
		_, err := t.exec(ctx, qInsertMark, sql.Named("tenant", r.TenantID), sql.Named("kind", r.Type),
			sql.Named("at", micros(r.At)), sql.Named("by", by), sql.Named("reason", nullString(r.Reason)),
			sql.Named("action", e[0]), sql.Named("actor_type", e[1]), sql.Named("actor_id", e[2]),
			sql.Named("actor_name", e[3]), sql.Named("actor_user_id", e[4]), sql.Named("ip", e[5]),
			sql.Named("user_agent", e[6]), sql.Named("details", e[7]))
		if err != nil {
			return nil, wrap("revoke keys: mark", err)
		}
		t.marked = true
		return revoked, nil
	}
	if ev := r.Event; ev != nil {
		gen := idGenerators.add(r.NewID)
		defer idGenerators.remove(gen)
		res, err := t.exec(ctx, qEvents, append(set, sql.Named("gen", gen),
			sql.Named("time", micros(ev.Time)), sql.Named("action", e[0]),
			sql.Named("actor_type", e[1]), sql.Named("actor_id", e[2]),
			sql.Named("actor_name", e[3]), sql.Named("actor_user_id", e[4]),
			sql.Named("target_type", ev.Target.Type), sql.Named("ip", e[5]),
			sql.Named("user_agent", e[6]), sql.Named("details", e[7]))...)
		if isUnique(err) {
			return nil, keyward.Errorf(keyward.EConflict, "an event with this id already exists")
		}
		if err != nil {
			return nil, wrap("revoke keys: events", err)
		}
		n, err := rowsAffected("revoke keys: events", res)
		if err != nil {
			return nil, err
		}
		if err := t.addEvents(ctx, r.TenantID, n); err != nil {
			return nil, err
		}
	}
	res, err := t.exec(ctx, qRevoke, append(set, sql.Named("by", by), sql.Named("reason", nullString(r.Reason)))...)
	if err != nil {
		return nil, wrap("revoke keys", err)
	}
	if n, err := rowsAffected("revoke keys", res); err != nil {
		return nil, err
	} else if n != int64(len(revoked)) {
		return nil, fmt.Errorf("sqlite: revoke keys: revoked %d keys of a set of %d", n, len(revoked))
	}
	return revoked, nil
}

// tenantMarked tells whether marks of the tenant wait to be settled.
func (t *tx) tenantMarked(ctx context.Context, tenantID string) (bool, error) {
	var ok bool
	if err := t.queryRow(ctx, qTenantMarked, tenantID).Scan(&ok); err != nil {
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
	var since, until any
	if f.Since != nil {
		since = micros(*f.Since)
	}
	if f.Until != nil {
		until = micros(*f.Until)
	}
	var pending bool
	if err := t.queryRow(ctx, qTrailMarked, sql.Named("tenant", tenantID), sql.Named("action", f.Action),
		sql.Named("since", since), sql.Named("until", until), sql.Named("actor", f.ActorID),
		sql.Named("key", f.KeyID), sql.Named("visible", f.VisibleTo)).Scan(&pending); err != nil {
		return wrap("read revocation marks", err)
	}
	if !pending {
		return nil
	}
	if t.readOnly {
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
		seq, maxRow, done, at int64
		tenant, kind          string
		by, reason            sql.NullString
	)
	err := t.queryRow(ctx, qFirstMark, tenantID).Scan(&seq, &tenant, &kind, &maxRow, &done, &at, &by, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap("settle revocations", err)
	}
	limit := int64(n)
	if n < 0 {
		limit = maxRow // every key the mark can cover
	}
	set := []any{sql.Named("tenant", tenant), sql.Named("kind", kind), sql.Named("at", at), sql.Named("done", done)}
	var count, end int64
	if err := t.queryRow(ctx, qSettleEnd, append(set, sql.Named("max", maxRow), sql.Named("n", limit))...).Scan(&count, &end); err != nil {
		return false, wrap("settle revocations", err)
	}
	set = append(set, sql.Named("end", end))
	gen := idGenerators.add(newEventID)
	defer idGenerators.remove(gen)
	res, err := t.exec(ctx, qSettleEvents, append(set, sql.Named("seq", seq), sql.Named("gen", gen))...)
	if err != nil {
		return false, wrap("settle revocations: events", err)
	}
	events, err := rowsAffected("settle revocations: events", res)
	if err != nil {
		return false, err
	}
	if err := t.addEvents(ctx, tenant, events); err != nil {
		return false, err
	}
	res, err = t.exec(ctx, qSettleRows, append(set, sql.Named("by", by), sql.Named("reason", reason))...)
	if err != nil {
		return false, wrap("settle revocations", err)
	}
	if rows, err := rowsAffected("settle revocations", res); err != nil {
		return false, err
	} else if rows != count {
		return false, fmt.Errorf("sqlite: settle revocations: wrote %d keys of a chunk of %d", rows, count)
	}
	if count < limit {
		_, err = t.exec(ctx, qDeleteMark, seq)
		t.settled = append(t.settled, tenant)
	} else {
		_, err = t.exec(ctx, qMarkDone, end, seq)
	}
	if err != nil {
		return false, wrap("settle revocations", err)
	}
	return true, nil
}

// newEventID draws the ID of an event the settler writes.
func newEventID() (string, error) { return keyward.NewID(rand.Reader, keyward.PrefixEvent) }

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
