package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// keyColumns are read from keyJoin: the key and the owner fields the domain
// shows with it.
const (
	keyColumns = `k.id, k.tenant_id, k.name, k.description, k.owner_id, k.role, k.scopes, k.meta,
	k.hash, k.start, k.disabled, k.created_at, k.updated_at, k.expires_at, k.last_used_at,
	k.revoked_at, k.revoked_by, k.revoke_reason, k.rate_limit, k.rate_window, u.name, u.email, u.kind`
	// plainKeyJoin reads the keys' rows alone, for a tenant without pending
	// marks: the same answer, without a lookup of the marks on every row.
	plainKeyJoin = `keys k JOIN users u ON u.id = k.owner_id`

	// ownerColumns are keyColumns' owner fields for a RETURNING clause, which
	// may not join.
	ownerColumns = `(SELECT name FROM users WHERE users.id = keys.owner_id),
	(SELECT email FROM users WHERE users.id = keys.owner_id),
	(SELECT kind FROM users WHERE users.id = keys.owner_id)`
)

// keyJoin reads the keys as they are (markedKeys): a key that a pending
// revocation mark covers reads revoked.
var keyJoin = markedKeys + ` k JOIN users u ON u.id = k.owner_id`

var (
	// owner_kind is copied from the owner (kinds never change); an unknown
	// owner fails on the foreign key, as it would without it.
	// A new key's rowid is above every revocation mark's max_rowid, even
	// where SQLite would reuse a deleted key's: no mark covers a later key.
	qInsertKey = writeQuery(`INSERT INTO keys (rowid, id, tenant_id, owner_id, name, description, role,
		scopes, meta, hash, start, disabled, created_at, updated_at, expires_at, last_used_at,
		revoked_at, revoked_by, revoke_reason, rate_limit, rate_window, owner_kind)
		VALUES (1 + max(coalesce((SELECT max(rowid) FROM keys), 0),
				coalesce((SELECT max(max_rowid) FROM key_revocations), 0)),
			?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
			coalesce((SELECT kind FROM users WHERE tenant_id = ?2 AND id = ?3), ''))
		RETURNING ` + ownerColumns)
	qKeyByID   = readQuery(`SELECT ` + keyColumns + ` FROM ` + keyJoin + ` WHERE k.tenant_id = ? AND k.id = ?`)
	qKeyByHash = readQuery(`SELECT ` + keyColumns + ` FROM ` + keyJoin + ` WHERE k.hash = ?`)
	// qKeyForVerify is KeyByHash and the tenant's settings in one statement.
	qKeyForVerify = readQuery(`SELECT ` + keyColumns + `, t.api_keys_enabled, t.max_expiration_days,
		t.max_keys_per_user, t.max_keys_per_service_user, t.expiry_notice_days, t.key_prefix
		FROM ` + keyJoin + ` JOIN tenants t ON t.id = k.tenant_id WHERE k.hash = ?`)
	qOwnerKeys = readQuery(`SELECT ` + keyColumns + ` FROM ` + keyJoin + ` WHERE k.tenant_id = ? AND k.owner_id = ?
		ORDER BY k.created_at, k.id`)
	qUpdateKey = writeQuery(`UPDATE keys SET name = :name, description = :description, role = :role,
		scopes = :scopes, meta = :meta, disabled = :disabled, expires_at = :expires_at,
		rate_limit = :rate_limit, rate_window = :rate_window,
		revoked_at = coalesce(revoked_at, :revoked_at),
		revoked_by = CASE WHEN revoked_at IS NULL THEN :revoked_by ELSE revoked_by END,
		revoke_reason = CASE WHEN revoked_at IS NULL THEN :revoke_reason ELSE revoke_reason END,
		updated_at = :updated_at
		WHERE tenant_id = :tenant AND id = :id
		RETURNING revoked_at, revoked_by, revoke_reason`)
	qDeleteKey     = writeQuery(`DELETE FROM keys WHERE tenant_id = ? AND id = ?`)
	qKeyTotal      = readQuery(`SELECT coalesce(sum(n), 0) FROM key_totals WHERE tenant_id = ?1 AND (?2 = '' OR kind = ?2)`)
	qCountLiveKeys = readQuery(`SELECT count(*) FROM keys k WHERE k.tenant_id = ? AND k.owner_id = ?
		AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?) AND NOT ` + marked)
	// Only forward: a row whose last_used_at is already later is not written.
	qTouchKey = writeQuery(`UPDATE keys SET last_used_at = ?
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`)
	// The keys' own rows, so that the partial index keys_expiry_unrecorded
	// serves the query; a key a mark covers is revoked, not expired.
	qExpiredUnrecorded = readQuery(`SELECT ` + keyColumns + ` FROM ` + plainKeyJoin + `
		WHERE k.expires_at <= ? AND k.revoked_at IS NULL AND k.expiry_recorded = 0 AND NOT ` + marked + `
		ORDER BY k.expires_at, k.id LIMIT ?`)
	qMarkExpiryRecorded = writeQuery(`UPDATE keys SET expiry_recorded = 1 WHERE id = ?`)
)

// CreateKey inserts k and fills its owner fields. A nil Scopes or Meta is
// stored (and left in k) as an empty list or object.
func (t *tx) CreateKey(ctx context.Context, k *keyward.Key) error {
	if k.ID == "" {
		return errors.New("sqlite: create key: empty id")
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
	err = t.queryRow(ctx, qInsertKey, k.ID, k.TenantID, k.OwnerID, k.Name, k.Description, k.Role,
		scopes, string(k.Meta), k.Hash, k.Start, k.Disabled, micros(k.CreatedAt), micros(k.UpdatedAt),
		nullMicros(k.ExpiresAt), nullMicros(k.LastUsedAt), nullMicros(k.RevokedAt),
		nullString(k.RevokedBy), nullString(k.RevokeReason), rateLimit(k.RateLimit), rateWindow(k.RateLimit),
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
	return oneKey(t.queryRow(ctx, qKeyByID, tenantID, id))
}

func (t *tx) KeyByHash(ctx context.Context, hash []byte) (*keyward.Key, error) {
	return oneKey(t.queryRow(ctx, qKeyByHash, hash))
}

// KeyForVerify is one statement on a read-only connection, outside any
// explicit transaction: a single SELECT reads one snapshot, and BEGIN and
// COMMIT would double the cost of a cache miss.
func (db *DB) KeyForVerify(ctx context.Context, hash []byte) (*keyward.Key, *keyward.Settings, error) {
	var (
		set     keyward.Settings
		maxDays sql.NullInt64
	)
	k, err := scanKey(db.readStmts[qKeyForVerify].QueryRowContext(ctx, hash), &set.APIKeysEnabled, &maxDays,
		&set.MaxKeysPerUser, &set.MaxKeysPerServiceUser, &set.ExpiryNoticeDays, &set.KeyPrefix)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, keyward.Errorf(keyward.ENotFound, "key not found")
	}
	if err != nil {
		return nil, nil, err
	}
	if maxDays.Valid {
		d := int(maxDays.Int64)
		set.MaxExpirationDays = &d
	}
	return k, &set, nil
}

func oneKey(row *sql.Row) (*keyward.Key, error) {
	k, err := scanKey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.ENotFound, "key not found")
	}
	return k, err
}

// OwnerKeys lists the owner's keys oldest first.
func (t *tx) OwnerKeys(ctx context.Context, tenantID, ownerID string) ([]*keyward.Key, error) {
	rows, err := t.query(ctx, qOwnerKeys, tenantID, ownerID)
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
		revokedAt  sql.NullInt64
		by, reason sql.NullString
	)
	err = t.queryRow(ctx, qUpdateKey,
		sql.Named("name", k.Name), sql.Named("description", k.Description),
		sql.Named("role", k.Role), sql.Named("scopes", scopes), sql.Named("meta", string(k.Meta)),
		sql.Named("disabled", k.Disabled), sql.Named("expires_at", nullMicros(k.ExpiresAt)),
		sql.Named("revoked_at", nullMicros(k.RevokedAt)), sql.Named("revoked_by", nullString(k.RevokedBy)),
		sql.Named("revoke_reason", nullString(k.RevokeReason)),
		sql.Named("updated_at", micros(k.UpdatedAt)),
		sql.Named("rate_limit", rateLimit(k.RateLimit)), sql.Named("rate_window", rateWindow(k.RateLimit)),
		sql.Named("tenant", k.TenantID), sql.Named("id", k.ID),
	).Scan(&revokedAt, &by, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return keyward.Errorf(keyward.ENotFound, "key not found")
	}
	if err != nil {
		return wrap("update key", err)
	}
	k.RevokedAt, k.RevokedBy, k.RevokeReason = timePtr(revokedAt), stringPtr(by), stringPtr(reason)
	return nil
}

func (t *tx) DeleteKey(ctx context.Context, tenantID, id string) error {
	res, err := t.exec(ctx, qDeleteKey, tenantID, id)
	if err != nil {
		return wrap("delete key", err)
	}
	return mustChange("delete key", res, "key not found")
}

func (t *tx) CountLiveKeys(ctx context.Context, tenantID, ownerID string, now time.Time) (int, error) {
	var n int
	if err := t.queryRow(ctx, qCountLiveKeys, tenantID, ownerID, micros(now)).Scan(&n); err != nil {
		return 0, wrap("count live keys", err)
	}
	return n, nil
}

func (t *tx) TouchKeys(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	s, err := t.prepare(ctx, qTouchKey)
	if err != nil {
		return wrap("touch keys", err)
	}
	for id, at := range used {
		if _, err := s.ExecContext(ctx, micros(at), id, micros(at)); err != nil {
			return wrap("touch keys", err)
		}
	}
	return nil
}

// ExpiredUnrecorded lists the keys in expiry order, oldest first.
func (t *tx) ExpiredUnrecorded(ctx context.Context, now time.Time, limit int) ([]*keyward.Key, error) {
	rows, err := t.query(ctx, qExpiredUnrecorded, micros(now), limit)
	if err != nil {
		return nil, wrap("expired unrecorded", err)
	}
	return collect(rows, "expired unrecorded", scanOneKey)
}

func (t *tx) MarkExpiryRecorded(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	s, err := t.prepare(ctx, qMarkExpiryRecorded)
	if err != nil {
		return wrap("mark expiry recorded", err)
	}
	for _, id := range ids {
		if _, err := s.ExecContext(ctx, id); err != nil {
			return wrap("mark expiry recorded", err)
		}
	}
	return nil
}

// keySort is how ListKeys orders by one column of the contract.
type keySort struct {
	expr    string // an SQL expression over keyJoin; text carries its collation
	integer bool   // the expression is an integer (a time), else text
	indexed bool   // an index of keys orders the tenant's keys by it
}

// statusExpr is Key.Status in SQL, at :now.
const statusExpr = `CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
	WHEN k.expires_at <= :now THEN 'expired'
	WHEN k.disabled THEN 'inactive'
	ELSE 'active' END`

// keySorts serve the contract's sort columns. Text compares case-insensitively;
// a NULL expires_at ("never") sorts after every time and a NULL last_used_at
// ("never used") before every time, through sentinels that the indexes of the
// schema repeat exactly.
var keySorts = map[string]keySort{
	"name":         {expr: "k.name COLLATE NOCASE", indexed: true},
	"id":           {expr: "k.id COLLATE NOCASE", indexed: true},
	"owner":        {expr: "u.name COLLATE NOCASE"},
	"type":         {expr: "k.owner_kind", indexed: true}, // NOCASE, as declared
	"role":         {expr: "k.role COLLATE NOCASE", indexed: true},
	"status":       {expr: statusExpr},
	"created_at":   {expr: "k.created_at", integer: true, indexed: true},
	"updated_at":   {expr: "k.updated_at", integer: true, indexed: true},
	"expires_at":   {expr: "coalesce(k.expires_at, 9223372036854775807)", integer: true, indexed: true},
	"last_used_at": {expr: "coalesce(k.last_used_at, -9223372036854775807)", integer: true, indexed: true},
}

// statusWhere selects one status at :now, in terms the indexes can use.
var statusWhere = map[string]string{
	keyward.StatusRevoked: `k.revoked_at IS NOT NULL`,
	keyward.StatusExpired: `k.revoked_at IS NULL AND k.expires_at <= :now`,
	keyward.StatusInactive: `k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > :now)
		AND k.disabled = 1`,
	keyward.StatusActive: `k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > :now)
		AND k.disabled = 0`,
}

// keyWhere is the WHERE clause of a key filter (without paging), over keys k
// alone: the owner's kind is on the key, and owners that match a search are
// found in a subquery.
type keyWhere struct {
	where   []string
	args    []any
	usesNow bool // the clause reads :now
	// counted: the filter is the tenant and at most the owner type, whose
	// totals the key_totals table keeps.
	counted bool
	tenant  string
	kind    string
	// found: the search index found the keys of q, type and owner, so the
	// total is their number where no status filters them further.
	found      keysFound
	foundTotal bool
	release    func() // after the query: frees what the clause lent to SQL
}

// newKeyWhere is the clause of f. found, when indexed, is what the search
// index found for f.Q: the clause then selects those rowids instead of
// matching q in SQL, by list or by kw_match (see walkSearch).
func newKeyWhere(f keyward.KeyFilter, found keysFound, indexed bool, sort keySort) (*keyWhere, error) {
	w := &keyWhere{where: []string{"k.tenant_id = :tenant"}, args: []any{sql.Named("tenant", f.TenantID)},
		counted: f.OwnerID == "" && f.Status == "" && f.Q == "", tenant: f.TenantID, kind: f.Type}
	if f.OwnerID != "" {
		w.where = append(w.where, "k.owner_id = :owner")
		w.args = append(w.args, sql.Named("owner", f.OwnerID))
	}
	if f.Type != "" {
		w.where = append(w.where, "k.owner_kind = :type")
		w.args = append(w.args, sql.Named("type", f.Type))
	}
	if f.Status != "" {
		sw, ok := statusWhere[f.Status]
		if !ok {
			return nil, keyward.Errorf(keyward.EInvalid, "unknown key status %q", f.Status)
		}
		w.where = append(w.where, "("+sw+")")
		w.usesNow = true
	}
	switch {
	case f.Q != "" && indexed:
		w.found, w.foundTotal = found, f.Status == ""
		if !found.narrowed && f.Status == "" && sort.indexed && walkSearch(len(found.rows), found.of, pageSize(f.PageSize)+1) {
			h := matchSets.add(found.rows)
			w.release = func() { matchSets.remove(h) }
			w.where = append(w.where, "kw_match(:match, k.rowid)")
			w.args = append(w.args, sql.Named("match", h))
		} else {
			w.where[0] = "+k.tenant_id = :tenant"
			w.where = append(w.where, "k.rowid IN (SELECT value FROM json_each(:found))")
			w.args = append(w.args, sql.Named("found", rowList(found.rows)))
		}
	case f.Q != "":
		// The matching keys are found in the narrow keys_search index (not
		// in every key's row), and the matching owners once, in the tenant's
		// users (not by joining every key to its owner); the rest of the
		// query starts from what they found, not from the tenant's index.
		c := func(col string) string { return searched(col, f.Q) }
		w.where[0] = "+k.tenant_id = :tenant"
		w.where = append(w.where, `k.rowid IN (SELECT s.rowid FROM keys s INDEXED BY keys_search
			WHERE s.tenant_id = :tenant AND (`+c("s.name")+` LIKE :q ESCAPE '\' OR `+c("s.id")+` LIKE :q ESCAPE '\'
			OR s.owner_id IN (SELECT id FROM users WHERE tenant_id = :tenant
				AND (`+c("name")+` LIKE :q ESCAPE '\' OR `+c("email")+` LIKE :q ESCAPE '\'))))`)
		w.args = append(w.args, sql.Named("q", likePattern(f.Q)))
	}
	if w.usesNow {
		w.args = append(w.args, sql.Named("now", micros(f.Now)))
	}
	return w, nil
}

// keyTotal counts the keys of the filter, whatever the page: from the
// counters where they answer it, else row by row from keys (the table, or
// markedKeys).
func (t *tx) keyTotal(ctx context.Context, w *keyWhere, keys string) (int, error) {
	if w.foundTotal {
		return w.found.total, nil
	}
	if w.counted {
		var n int
		if err := t.queryRow(ctx, qKeyTotal, w.tenant, w.kind).Scan(&n); err != nil {
			return 0, wrap("count keys", err)
		}
		return n, nil
	}
	var n int
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM `+keys+` k WHERE `+
		strings.Join(w.where, " AND "), w.args...).Scan(&n); err != nil {
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
	if _, ok := statusWhere[f.Status]; f.Status != "" && !ok {
		return nil, keyward.Errorf(keyward.EInvalid, "unknown key status %q", f.Status)
	}
	var after *keyward.Cursor
	if f.PageToken != "" {
		c, err := keyward.DecodeCursor(f.PageToken, fp)
		if err != nil {
			return nil, err
		}
		after = &c
	}
	found, indexed, err := t.searchKeys(ctx, f, sortName, after)
	if err != nil {
		return nil, err
	}
	w, err := newKeyWhere(f, found, indexed, sort)
	if err != nil {
		return nil, err
	}
	if w.release != nil {
		defer w.release()
	}
	// A tenant with pending revocation marks is read through markedKeys,
	// any other from the keys' own rows (and their indexes) alone.
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
	where, args, usesNow := w.where, w.args, w.usesNow

	if sortName == "status" && !usesNow {
		args = append(args, sql.Named("now", micros(f.Now)))
	}
	dir, cmp := "ASC", ">"
	if f.Desc {
		dir, cmp = "DESC", "<"
	}
	if c := after; c != nil {
		var v any = c.Value
		if sort.integer {
			n, err := strconv.ParseInt(c.Value, 10, 64)
			if err != nil {
				return nil, keyward.Errorf(keyward.EInvalid, "invalid page_token")
			}
			v = n
		}
		// The row value (expr, k.id) > (v, id), spelled so that SQLite seeks
		// in the collated or expression index instead of scanning from its start.
		where = append(where, fmt.Sprintf("%[1]s %[2]s= :cursor_value AND (%[1]s %[2]s :cursor_value OR k.id %[2]s :cursor_id)",
			sort.expr, cmp))
		args = append(args, sql.Named("cursor_value", v), sql.Named("cursor_id", c.ID))
	}
	size := pageSize(f.PageSize)
	args = append(args, sql.Named("limit", size+1))
	q := fmt.Sprintf(`SELECT %s, %s FROM %s WHERE %s ORDER BY %s %s, k.id %s LIMIT :limit`,
		keyColumns, sort.expr, join, strings.Join(where, " AND "), sort.expr, dir, dir)
	rows, err := t.tx.QueryContext(ctx, q, args...)
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
	if err := rows.Err(); err != nil {
		return nil, wrap("list keys", err)
	}
	return page, nil
}

func scanOneKey(row scanner) (*keyward.Key, error) { return scanKey(row) }

// scanKey reads one row of keyColumns, then any extra
// columns into extra. It returns sql.ErrNoRows unwrapped.
func scanKey(row scanner, extra ...any) (*keyward.Key, error) {
	var (
		k                 keyward.Key
		scopes, meta      string
		created, updated  int64
		expires, lastUsed sql.NullInt64
		revoked           sql.NullInt64
		revokedBy, reason sql.NullString
		limit, window     sql.NullInt64
	)
	dest := []any{&k.ID, &k.TenantID, &k.Name, &k.Description, &k.OwnerID, &k.Role, &scopes, &meta,
		&k.Hash, &k.Start, &k.Disabled, &created, &updated, &expires, &lastUsed,
		&revoked, &revokedBy, &reason, &limit, &window, &k.OwnerName, &k.OwnerEmail, &k.Type}
	err := row.Scan(append(dest, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
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
	k.RevokedBy, k.RevokeReason = stringPtr(revokedBy), stringPtr(reason)
	if limit.Valid && window.Valid {
		k.RateLimit = &keyward.RateLimit{Limit: int(limit.Int64), WindowSeconds: int(window.Int64)}
	}
	return &k, nil
}

// rateLimit and rateWindow store a key's optional rate limit as two columns.
func rateLimit(r *keyward.RateLimit) sql.NullInt64 {
	if r == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(r.Limit), Valid: true}
}

func rateWindow(r *keyward.RateLimit) sql.NullInt64 {
	if r == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(r.WindowSeconds), Valid: true}
}
