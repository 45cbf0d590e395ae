package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
)

// keyColumns are read from keyJoin: the key and the owner fields the domain
// shows with it.
const (
	keyColumns = `k.id, k.tenant_id, k.name, k.description, k.owner_id, k.role, k.scopes::text, k.meta::text,
	k.hash, k.start, k.disabled, k.created_at, k.updated_at, k.expires_at, k.last_used_at,
	k.revoked_at, k.revoked_by, k.revoke_reason, k.rate_limit, k.rate_window, u.name, u.email, u.kind`
	// keyJoin reads the keys as they are (markedKeys): a key that a pending
	// revocation mark covers reads revoked.
	keyJoin = markedKeys + ` k JOIN users u ON u.id = k.owner_id`
	// plainKeyJoin reads the keys' rows alone, for a tenant without pending
	// marks: the same answer, without a lookup of the marks on every row.
	plainKeyJoin = `keys k JOIN users u ON u.id = k.owner_id`
)

const (
	qInsertKey = `INSERT INTO keys (id, tenant_id, owner_id, name, description, role,
		scopes, meta, hash, start, disabled, created_at, updated_at, expires_at, last_used_at,
		revoked_at, revoked_by, revoke_reason, rate_limit, rate_window)
		VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::json, $9, $10, $11, $12, $13, $14, $15,
		$16, $17, $18, $19, $20)
		RETURNING (SELECT name FROM users WHERE users.id = keys.owner_id),
		(SELECT email FROM users WHERE users.id = keys.owner_id),
		(SELECT kind FROM users WHERE users.id = keys.owner_id)`
	qKeyByID   = `SELECT ` + keyColumns + ` FROM ` + keyJoin + ` WHERE k.tenant_id = $1 AND k.id = $2`
	qLockKey   = `SELECT 1 FROM keys WHERE tenant_id = $1 AND id = $2 FOR UPDATE`
	qKeyByHash = `SELECT ` + keyColumns + ` FROM ` + keyJoin + ` WHERE k.hash = $1`
	// qKeyForVerify is KeyByHash and the tenant's settings in one statement.
	qKeyForVerify = `SELECT ` + keyColumns + `, t.api_keys_enabled, t.max_expiration_days,
		t.max_keys_per_user, t.max_keys_per_service_user, t.expiry_notice_days, t.key_prefix
		FROM ` + keyJoin + ` JOIN tenants t ON t.id = k.tenant_id WHERE k.hash = $1`
	qOwnerKeys = `SELECT ` + keyColumns + ` FROM ` + keyJoin + ` WHERE k.tenant_id = $1 AND k.owner_id = $2
		ORDER BY k.created_at, k.id`
	qUpdateKey = `UPDATE keys SET name = @name, description = @description, role = @role,
		scopes = @scopes::text::jsonb, meta = @meta::text::json, disabled = @disabled, expires_at = @expires_at,
		rate_limit = @rate_limit, rate_window = @rate_window,
		revoked_at = coalesce(revoked_at, @revoked_at),
		revoked_by = CASE WHEN revoked_at IS NULL THEN @revoked_by ELSE revoked_by END,
		revoke_reason = CASE WHEN revoked_at IS NULL THEN @revoke_reason ELSE revoke_reason END,
		updated_at = @updated_at
		WHERE tenant_id = @tenant AND id = @id
		RETURNING revoked_at, revoked_by, revoke_reason`
	qDeleteKey = `DELETE FROM keys WHERE tenant_id = $1 AND id = $2`
	qKeyTotal  = `SELECT coalesce(sum(n), 0)::bigint FROM key_totals
		WHERE tenant_id = $1 AND (coalesce($2::text, '') = '' OR kind = $2::text)`
	qCountLiveKeys = `SELECT count(*) FROM keys k WHERE k.tenant_id = $1 AND k.owner_id = $2
		AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $3) AND NOT ` + marked
	// The join with the owner serves the Type filter. Only what the events
	// and the caches need comes back.
	qRevokeKeys = `UPDATE keys k SET revoked_at = @at, revoked_by = @by,
		revoke_reason = @reason, updated_at = @at
		FROM users u
		WHERE u.id = k.owner_id AND k.tenant_id = @tenant
		AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > @at)
		AND (@type::text = '' OR u.kind = @type::text) AND NOT ` + marked + `
		RETURNING k.id, k.hash, k.name, k.owner_id`
	// Only forward: a row whose last_used_at is already later is not written.
	qTouchKey = `UPDATE keys SET last_used_at = $1
		WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)`
	// The keys' own rows, so that the partial index keys_expiry_unrecorded
	// serves the query; a key a mark covers is revoked, not expired.
	qExpiredUnrecorded = `SELECT ` + keyColumns + ` FROM ` + plainKeyJoin + `
		WHERE k.expires_at <= $1 AND k.revoked_at IS NULL AND NOT k.expiry_recorded AND NOT ` + marked + `
		ORDER BY k.expires_at, k.id LIMIT $2`
	qMarkExpiryRecorded = `UPDATE keys SET expiry_recorded = true WHERE id = ANY($1::text[])`
)

// CreateKey inserts k and fills its owner fields. A nil Scopes or Meta is
// stored (and left in k) as an empty list or object.
func (t *tx) CreateKey(ctx context.Context, k *keyward.Key) error {
	if k.ID == "" {
		return errors.New("postgres: create key: empty id")
	}
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if k.Meta == nil {
		k.Meta = json.RawMessage("{}")
	}
	scopes, err := jsonList(k.Scopes)
	if err != nil {
		return wrap("create key", err)
	}
	err = t.tx.QueryRow(ctx, qInsertKey, k.ID, k.TenantID, k.OwnerID, k.Name, k.Description, k.Role,
		scopes, string(k.Meta), k.Hash, k.Start, k.Disabled, micros(k.CreatedAt), micros(k.UpdatedAt),
		nullMicros(k.ExpiresAt), nullMicros(k.LastUsedAt), nullMicros(k.RevokedAt),
		k.RevokedBy, k.RevokeReason, rateLimit(k.RateLimit), rateWindow(k.RateLimit),
	).Scan(&k.OwnerName, &k.OwnerEmail, &k.Type)
	switch {
	case isUnique(err):
		return keyward.Errorf(keyward.EConflict, "a key with this id or secret already exists")
	case isForeignKey(err):
		return keyward.Errorf(keyward.ENotFound, "owner not found")
	case err != nil:
		return wrap("create key", err)
	}
	return nil
}

func (t *tx) KeyByID(ctx context.Context, tenantID, id string) (*keyward.Key, error) {
	if t.write {
		// The row is locked first, then read as it is (a read committed
		// statement after the lock sees its latest version): FOR UPDATE
		// cannot lock through markedKeys' outer join with the marks.
		if _, err := t.tx.Exec(ctx, qLockKey, tenantID, id); err != nil {
			return nil, wrap("lock key", err)
		}
	}
	return oneKey(t.tx.QueryRow(ctx, qKeyByID, tenantID, id))
}

// KeyForVerify is one statement on a pooled connection, outside any
// explicit transaction: a single SELECT reads one snapshot.
func (db *DB) KeyForVerify(ctx context.Context, hash []byte) (*keyward.Key, *keyward.Settings, error) {
	var (
		set                         keyward.Settings
		maxDays                     *int32
		perUser, perService, notice int32
	)
	k, err := scanKey(db.pool.QueryRow(ctx, qKeyForVerify, hash), &set.APIKeysEnabled, &maxDays,
		&perUser, &perService, &notice, &set.KeyPrefix)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, keyward.Errorf(keyward.ENotFound, "key not found")
	}
	if err != nil {
		return nil, nil, err
	}
	set.MaxKeysPerUser, set.MaxKeysPerServiceUser, set.ExpiryNoticeDays = int(perUser), int(perService), int(notice)
	if maxDays != nil {
		d := int(*maxDays)
		set.MaxExpirationDays = &d
	}
	return k, &set, nil
}

func (t *tx) KeyByHash(ctx context.Context, hash []byte) (*keyward.Key, error) {
	return oneKey(t.tx.QueryRow(ctx, qKeyByHash, hash))
}

func oneKey(row pgx.Row) (*keyward.Key, error) {
	k, err := scanKey(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, keyward.Errorf(keyward.ENotFound, "key not found")
	}
	return k, err
}

// OwnerKeys lists the owner's keys oldest first.
func (t *tx) OwnerKeys(ctx context.Context, tenantID, ownerID string) ([]*keyward.Key, error) {
	rows, err := t.tx.Query(ctx, qOwnerKeys, tenantID, ownerID)
	if err != nil {
		return nil, wrap("owner keys", err)
	}
	return collect(rows, "owner keys", scanOneKey)
}

// UpdateKey writes k's mutable fields. Once the stored key is revoked its
// revocation fields stay as they are; k's revocation fields are set to what
// the store holds afterwards.
func (t *tx) UpdateKey(ctx context.Context, k *keyward.Key) error {
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if k.Meta == nil {
		k.Meta = json.RawMessage("{}")
	}
	scopes, err := jsonList(k.Scopes)
	if err != nil {
		return wrap("update key", err)
	}
	var (
		revokedAt  *int64
		by, reason *string
	)
	err = t.tx.QueryRow(ctx, qUpdateKey, pgx.NamedArgs{
		"name": k.Name, "description": k.Description,
		"role": k.Role, "scopes": scopes, "meta": string(k.Meta),
		"disabled": k.Disabled, "expires_at": nullMicros(k.ExpiresAt),
		"revoked_at": nullMicros(k.RevokedAt), "revoked_by": k.RevokedBy,
		"revoke_reason": k.RevokeReason, "updated_at": micros(k.UpdatedAt),
		"rate_limit": rateLimit(k.RateLimit), "rate_window": rateWindow(k.RateLimit),
		"tenant": k.TenantID, "id": k.ID,
	}).Scan(&revokedAt, &by, &reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return keyward.Errorf(keyward.ENotFound, "key not found")
	}
	if err != nil {
		return wrap("update key", err)
	}
	k.RevokedAt, k.RevokedBy, k.RevokeReason = timePtr(revokedAt), by, reason
	return nil
}

func (t *tx) DeleteKey(ctx context.Context, tenantID, id string) error {
	tag, err := t.tx.Exec(ctx, qDeleteKey, tenantID, id)
	if err != nil {
		return wrap("delete key", err)
	}
	return mustChange(tag, "key not found")
}

func (t *tx) CountLiveKeys(ctx context.Context, tenantID, ownerID string, now time.Time) (int, error) {
	var n int
	if err := t.tx.QueryRow(ctx, qCountLiveKeys, tenantID, ownerID, micros(now)).Scan(&n); err != nil {
		return 0, wrap("count live keys", err)
	}
	return n, nil
}

// RevokeKeys revokes a set of markRevocationsFrom keys or more by a mark
// (revocation.go); a smaller one in one UPDATE ... RETURNING, then copies the
// keys' events in (COPY). It returns the keys' IDs and digests ordered by
// ID. Their updated_at becomes r.At.
func (t *tx) RevokeKeys(ctx context.Context, r keyward.RevokeSpec) ([]keyward.RevokedKey, error) {
	if r.Event != nil && r.NewID == nil {
		return nil, errors.New("postgres: revoke keys: an event without NewID")
	}
	if revoked, ok, err := t.revokeByMark(ctx, r); err != nil || ok {
		return revoked, err
	}
	by := nullString(r.By)
	rows, err := t.tx.Query(ctx, qRevokeKeys, pgx.NamedArgs{"at": micros(r.At), "by": by,
		"reason": r.Reason, "tenant": r.TenantID, "type": r.Type})
	if err != nil {
		return nil, wrap("revoke keys", err)
	}
	type revokedRow struct {
		keyward.RevokedKey
		name, owner string
	}
	revoked, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (revokedRow, error) {
		var k revokedRow
		err := row.Scan(&k.ID, &k.Hash, &k.name, &k.owner)
		return k, err
	})
	if err != nil {
		return nil, wrap("revoke keys", err)
	}
	slices.SortFunc(revoked, func(a, b revokedRow) int { return strings.Compare(a.ID, b.ID) })
	if e := r.Event; e != nil && len(revoked) > 0 {
		if r.NewID == nil {
			return nil, errors.New("postgres: revoke keys: an event without NewID")
		}
		details, err := jsonObject(e.Details)
		if err != nil {
			return nil, wrap("revoke keys: event details", err)
		}
		ev := *e
		_, err = t.tx.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumnList,
			pgx.CopyFromSlice(len(revoked), func(i int) ([]any, error) {
				k := revoked[i]
				id, err := r.NewID()
				if err != nil {
					return nil, err
				}
				ev.ID, ev.Target.ID, ev.Target.Name, ev.TargetOwnerID = id, k.ID, k.name, k.owner
				return eventValues(&ev, json.RawMessage(details)), nil
			}))
		if isUnique(err) {
			return nil, keyward.Errorf(keyward.EConflict, "an event with this id already exists")
		}
		if err != nil {
			return nil, wrap("revoke keys: events", err)
		}
	}
	out := make([]keyward.RevokedKey, len(revoked))
	for i, k := range revoked {
		out[i] = k.RevokedKey
	}
	return out, nil
}

// TouchKeys sends one conditional update per key in a single round trip, in
// id order so that concurrent flushes lock rows in the same order.
func (t *tx) TouchKeys(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range used {
			if !yield(id) {
				return
			}
		}
	}) {
		b.Queue(qTouchKey, micros(used[id]), id)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return wrap("touch keys", err)
	}
	return nil
}

// ExpiredUnrecorded lists the keys in expiry order, oldest first.
func (t *tx) ExpiredUnrecorded(ctx context.Context, now time.Time, limit int) ([]*keyward.Key, error) {
	rows, err := t.tx.Query(ctx, qExpiredUnrecorded, micros(now), limit)
	if err != nil {
		return nil, wrap("expired unrecorded", err)
	}
	return collect(rows, "expired unrecorded", scanOneKey)
}

func (t *tx) MarkExpiryRecorded(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := t.tx.Exec(ctx, qMarkExpiryRecorded, ids); err != nil {
		return wrap("mark expiry recorded", err)
	}
	return nil
}

// keySort is how ListKeys orders by one column of the contract.
type keySort struct {
	expr    string // an SQL expression over keyJoin
	integer bool   // the expression is an integer (a time), else text
}

// statusExpr is Key.Status in SQL, at @now.
const statusExpr = `(CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
	WHEN k.expires_at <= @now THEN 'expired'
	WHEN k.disabled THEN 'inactive'
	ELSE 'active' END) COLLATE "C"`

// keySorts serve the contract's sort columns. Text compares case-insensitively
// (lower() over COLLATE "C" columns folds ASCII only, then compares bytes);
// a NULL expires_at ("never") sorts after every time and a NULL last_used_at
// ("never used") before every time, through sentinels that the indexes of the
// schema repeat exactly.
var keySorts = map[string]keySort{
	"name":         {expr: "lower(k.name)"},
	"id":           {expr: "lower(k.id)"},
	"owner":        {expr: "lower(u.name)"},
	"type":         {expr: "lower(u.kind)"},
	"role":         {expr: "lower(k.role)"},
	"status":       {expr: statusExpr},
	"created_at":   {expr: "k.created_at", integer: true},
	"updated_at":   {expr: "k.updated_at", integer: true},
	"expires_at":   {expr: "coalesce(k.expires_at, 9223372036854775807)", integer: true},
	"last_used_at": {expr: "coalesce(k.last_used_at, -9223372036854775807)", integer: true},
}

// statusWhere selects one status at @now.
var statusWhere = map[string]string{
	keyward.StatusRevoked: `k.revoked_at IS NOT NULL`,
	keyward.StatusExpired: `k.revoked_at IS NULL AND k.expires_at <= @now`,
	keyward.StatusInactive: `k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > @now)
		AND k.disabled`,
	keyward.StatusActive: `k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > @now)
		AND NOT k.disabled`,
}

// keyWhere is the WHERE clause of a key filter (without paging), over keys k
// or, when joinUser, over keyJoin.
type keyWhere struct {
	where    []string
	args     pgx.NamedArgs
	joinUser bool // the clause reads the owner
	// counted: the filter is the tenant and at most the owner type, whose
	// total is a counter (00004_key_totals.sql).
	counted bool
	// matches: the IDs of the keys q finds; onlyQ: nothing else filters
	// them, so they are counted as they are, without reading each key again.
	matches string
	onlyQ   bool
}

func newKeyWhere(f keyward.KeyFilter, fold string) (*keyWhere, error) {
	w := &keyWhere{where: []string{"k.tenant_id = @tenant"}, args: pgx.NamedArgs{"tenant": f.TenantID},
		counted: f.OwnerID == "" && f.Status == "" && f.Q == ""}
	if f.OwnerID != "" {
		w.where = append(w.where, "k.owner_id = @owner")
		w.args["owner"] = f.OwnerID
	}
	if f.Type != "" {
		w.where = append(w.where, "u.kind = @type")
		w.args["type"] = f.Type
		w.joinUser = true
	}
	if f.Status != "" {
		sw, ok := statusWhere[f.Status]
		if !ok {
			return nil, keyward.Errorf(keyward.EInvalid, "unknown key status %q", f.Status)
		}
		w.where = append(w.where, "("+sw+")")
		w.args["now"] = micros(f.Now)
	}
	if f.Q != "" {
		// The keys that match by name or ID, and the keys of the owners that
		// match, are found apart, each through its trigram indexes where
		// 00005_key_search made them: one condition over both tables could
		// only be tested row by row.
		c := func(col string) string { return lowered(col, f.Q, fold) }
		w.matches = `SELECT s.id FROM keys s WHERE s.tenant_id = @tenant
				AND (` + c("s.name") + ` LIKE @q ESCAPE '\' OR ` + c("s.id") + ` LIKE @q ESCAPE '\')
			UNION
			SELECT o.id FROM users su JOIN keys o ON o.owner_id = su.id AND o.tenant_id = su.tenant_id
			WHERE su.tenant_id = @tenant
				AND (` + c("su.name") + ` LIKE @q ESCAPE '\' OR ` + c("su.email") + ` LIKE @q ESCAPE '\')`
		w.where = append(w.where, `k.id IN (`+w.matches+`)`)
		w.args["q"] = likePattern(f.Q)
		w.onlyQ = f.OwnerID == "" && f.Type == "" && f.Status == ""
	}
	return w, nil
}

// keyTotal counts the keys of the filter, whatever the page, reading the
// keys from keys (the table, or markedKeys).
func (t *tx) keyTotal(ctx context.Context, w *keyWhere, keys string) (int, error) {
	if w.counted {
		var n int
		if err := t.tx.QueryRow(ctx, qKeyTotal, w.args["tenant"], w.args["type"]).Scan(&n); err != nil {
			return 0, wrap("count keys", err)
		}
		return n, nil
	}
	if w.onlyQ {
		var n int
		if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM (`+w.matches+`) m`, w.args).Scan(&n); err != nil {
			return 0, wrap("count keys", err)
		}
		return n, nil
	}
	from := keys + " k"
	if w.joinUser {
		from = keys + " k JOIN users u ON u.id = k.owner_id"
	}
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM `+from+` WHERE `+
		strings.Join(w.where, " AND "), w.args).Scan(&n); err != nil {
		return 0, wrap("count keys", err)
	}
	return n, nil
}

func (t *tx) ListKeys(ctx context.Context, f keyward.KeyFilter) (*keyward.KeyPage, error) {
	sortName := f.Sort
	if sortName == "" {
		sortName = "created_at"
	}
	sort, ok := keySorts[sortName]
	if !ok {
		return nil, keyward.Errorf(keyward.EInvalid, "cannot sort keys by %q", f.Sort)
	}
	fp := keyward.Fingerprint("keys", f.TenantID, f.OwnerID, f.Q, f.Type, f.Status,
		sortName, strconv.FormatBool(f.Desc))
	w, err := newKeyWhere(f, t.fold)
	if err != nil {
		return nil, err
	}
	// A tenant with pending revocation marks is read through markedKeys,
	// any other from the keys' own rows alone.
	keys, join := "keys", plainKeyJoin
	if pending, err := t.tenantMarked(ctx, f.TenantID); err != nil {
		return nil, err
	} else if pending {
		keys, join = markedKeys, keyJoin
	}
	page := &keyward.KeyPage{}
	if page.Total, err = t.keyTotal(ctx, w, keys); err != nil {
		return nil, err
	}
	where := w.where
	args := pgx.NamedArgs{}
	for k, v := range w.args {
		args[k] = v
	}
	if sortName == "status" {
		args["now"] = micros(f.Now)
	}
	dir, cmp := "ASC", ">"
	if f.Desc {
		dir, cmp = "DESC", "<"
	}
	if f.PageToken != "" {
		c, err := keyward.DecodeCursor(f.PageToken, fp)
		if err != nil {
			return nil, err
		}
		var v any = c.Value
		if sort.integer {
			n, err := strconv.ParseInt(c.Value, 10, 64)
			if err != nil {
				return nil, keyward.Errorf(keyward.EInvalid, "invalid page_token")
			}
			v = n
		}
		// The row value (expr, k.id) > (v, id), spelled so that the planner
		// can seek in the expression index.
		where = append(where, fmt.Sprintf("%[1]s %[2]s= @cursor_value AND (%[1]s %[2]s @cursor_value OR k.id %[2]s @cursor_id)",
			sort.expr, cmp))
		args["cursor_value"], args["cursor_id"] = v, c.ID
	}
	size := pageSize(f.PageSize)
	args["limit"] = size + 1
	q := fmt.Sprintf(`SELECT %s, %s FROM %s WHERE %s ORDER BY %s %s, k.id %s LIMIT @limit`,
		keyColumns, sort.expr, join, strings.Join(where, " AND "), sort.expr, dir, dir)
	rows, err := t.tx.Query(ctx, q, args)
	if err != nil {
		return nil, wrap("list keys", err)
	}
	defer rows.Close()
	var (
		last      any    // the sort value of the row just read
		prevValue string // the sort value of the page's last row so far
	)
	for rows.Next() {
		k, err := scanKey(rows, &last)
		if err != nil {
			return nil, err
		}
		if len(page.Keys) == size {
			// One row beyond the page: there is a next page, starting after
			// the page's last row.
			prev := page.Keys[size-1]
			page.NextPageToken = keyward.EncodeCursor(keyward.Cursor{Sort: sortName, Desc: f.Desc,
				Value: prevValue, ID: prev.ID, Filter: fp})
			break
		}
		page.Keys = append(page.Keys, k)
		prevValue = fmt.Sprint(last)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap("list keys", err)
	}
	return page, nil
}

func scanOneKey(row pgx.Row) (*keyward.Key, error) { return scanKey(row) }

// scanKey reads one row of keyColumns, then any extra columns into extra. It
// returns pgx.ErrNoRows unwrapped.
func scanKey(row pgx.Row, extra ...any) (*keyward.Key, error) {
	var (
		k                 keyward.Key
		scopes, meta      string
		created, updated  int64
		expires, lastUsed *int64
		revoked           *int64
		limit, window     *int32
	)
	dest := []any{&k.ID, &k.TenantID, &k.Name, &k.Description, &k.OwnerID, &k.Role, &scopes, &meta,
		&k.Hash, &k.Start, &k.Disabled, &created, &updated, &expires, &lastUsed,
		&revoked, &k.RevokedBy, &k.RevokeReason, &limit, &window, &k.OwnerName, &k.OwnerEmail, &k.Type}
	err := row.Scan(append(dest, extra...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if err != nil {
		return nil, wrap("read key", err)
	}
	if k.Scopes, err = parseList(scopes); err != nil {
		return nil, wrap("read key "+k.ID, err)
	}
	k.Meta = json.RawMessage(meta)
	k.CreatedAt, k.UpdatedAt = fromMicros(created), fromMicros(updated)
	k.ExpiresAt, k.LastUsedAt, k.RevokedAt = timePtr(expires), timePtr(lastUsed), timePtr(revoked)
	if limit != nil && window != nil {
		k.RateLimit = &keyward.RateLimit{Limit: int(*limit), WindowSeconds: int(*window)}
	}
	return &k, nil
}

// rateLimit and rateWindow store a key's optional rate limit as two columns.
func rateLimit(r *keyward.RateLimit) *int32 {
	if r == nil {
		return nil
	}
	n := int32(r.Limit)
	return &n
}

func rateWindow(r *keyward.RateLimit) *int32 {
	if r == nil {
		return nil
	}
	n := int32(r.WindowSeconds)
	return &n
}
