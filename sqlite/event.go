package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
)

const eventColumns = `id, tenant_id, time, action, actor_type, actor_id, actor_name, actor_user_id,
	target_type, target_id, target_name, target_owner_id, ip, user_agent, details`

var qInsertEvent = writeQuery(`INSERT INTO events (` + eventColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)

// qAddEvents adds to a tenant's event total (see 00005_event_totals.sql).
var qAddEvents = writeQuery(`INSERT INTO event_totals (tenant_id, n) VALUES (?1, ?2)
	ON CONFLICT (tenant_id) DO UPDATE SET n = n + ?2`)

// qEventTotal is a tenant's event total, for the unfiltered list.
var qEventTotal = readQuery(`SELECT coalesce((SELECT n FROM event_totals WHERE tenant_id = ?), 0)`)

// addEvents adds n to a tenant's event total.
func (t *tx) addEvents(ctx context.Context, tenantID string, n int64) error {
	if n == 0 {
		return nil
	}
	if _, err := t.exec(ctx, qAddEvents, tenantID, n); err != nil {
		return wrap("count events", err)
	}
	return nil
}

// InsertEvents appends events to the audit trail through one prepared
// statement, and adds them to their tenants' totals. A nil Details is
// stored as {}.
func (t *tx) InsertEvents(ctx context.Context, events ...*keyward.Event) error {
	if len(events) == 0 {
		return nil
	}
	s, err := t.prepare(ctx, qInsertEvent)
	if err != nil {
		return wrap("insert events", err)
	}
	for _, e := range events {
		if e.ID == "" {
			return errors.New("sqlite: insert event: empty id")
		}
		details, err := jsonObject(e.Details)
		if err != nil {
			return wrap("insert event "+e.Action, err)
		}
		_, err = s.ExecContext(ctx, e.ID, e.TenantID, micros(e.Time), e.Action,
			e.Actor.Type, e.Actor.ID, e.Actor.Name, e.ActorUserID,
			e.Target.Type, e.Target.ID, e.Target.Name, e.TargetOwnerID,
			e.IP, e.UserAgent, details)
		if isUnique(err) {
			return keyward.Errorf(keyward.EConflict, "an event with this id already exists")
		}
		if err != nil {
			return wrap("insert event "+e.Action, err)
		}
	}
	added := map[string]int64{}
	for _, e := range events {
		added[e.TenantID]++
	}
	for tenant, n := range added {
		if err := t.addEvents(ctx, tenant, n); err != nil {
			return err
		}
	}
	return nil
}

// ListEvents lists events newest first (time, then id, descending).
func (t *tx) ListEvents(ctx context.Context, f keyward.EventFilter) (*keyward.EventPage, error) {
	// The key.revoked events of a mark's keys are written when it settles.
	if err := t.settleFor(ctx, f); err != nil {
		return nil, err
	}
	var since, until string
	if f.Since != nil {
		since = strconv.FormatInt(micros(*f.Since), 10)
	}
	if f.Until != nil {
		until = strconv.FormatInt(micros(*f.Until), 10)
	}
	fp := keyward.Fingerprint("events", f.TenantID, f.Action, f.KeyID, f.ActorID, since, until, f.VisibleTo)

	var (
		where = []string{"tenant_id = :tenant"}
		args  = []any{sql.Named("tenant", f.TenantID)}
	)
	if f.Action != "" {
		where = append(where, "action = :action")
		args = append(args, sql.Named("action", f.Action))
	}
	if f.KeyID != "" {
		where = append(where, "target_type = 'key' AND target_id = :key")
		args = append(args, sql.Named("key", f.KeyID))
	}
	if f.ActorID != "" {
		where = append(where, "(actor_id = :actor OR actor_user_id = :actor)")
		args = append(args, sql.Named("actor", f.ActorID))
	}
	if f.Since != nil {
		where = append(where, "time >= :since")
		args = append(args, sql.Named("since", micros(*f.Since)))
	}
	if f.Until != nil {
		where = append(where, "time < :until")
		args = append(args, sql.Named("until", micros(*f.Until)))
	}
	if f.VisibleTo != "" {
		where = append(where, "(actor_user_id = :visible OR target_owner_id = :visible)")
		args = append(args, sql.Named("visible", f.VisibleTo))
	}

	page := &keyward.EventPage{}
	var count *sql.Row
	if len(where) == 1 { // the tenant's every event: its counter
		count = t.queryRow(ctx, qEventTotal, f.TenantID)
	} else {
		count = t.tx.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE `+strings.Join(where, " AND "), args...)
	}
	if err := count.Scan(&page.Total); err != nil {
		return nil, wrap("count events", err)
	}

	if f.PageToken != "" {
		c, err := keyward.DecodeCursor(f.PageToken, fp)
		if err != nil {
			return nil, err
		}
		at, err := strconv.ParseInt(c.Value, 10, 64)
		if err != nil {
			return nil, keyward.Errorf(keyward.EInvalid, "invalid page_token")
		}
		where = append(where, "(time, id) < (:cursor_time, :cursor_id)")
		args = append(args, sql.Named("cursor_time", at), sql.Named("cursor_id", c.ID))
	}
	size := pageSize(f.PageSize)
	args = append(args, sql.Named("limit", size+1))
	rows, err := t.tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE `+
		strings.Join(where, " AND ")+` ORDER BY time DESC, id DESC LIMIT :limit`, args...)
	if err != nil {
		return nil, wrap("list events", err)
	}
	events, err := collect(rows, "list events", scanEvent)
	if err != nil {
		return nil, err
	}
	if len(events) > size {
		events = events[:size]
		last := events[size-1]
		page.NextPageToken = keyward.EncodeCursor(keyward.Cursor{
			Desc: true, Value: strconv.FormatInt(micros(last.Time), 10), ID: last.ID, Filter: fp})
	}
	page.Events = events
	return page, nil
}

func scanEvent(row scanner) (*keyward.Event, error) {
	var (
		e       keyward.Event
		at      int64
		details string
	)
	err := row.Scan(&e.ID, &e.TenantID, &at, &e.Action, &e.Actor.Type, &e.Actor.ID, &e.Actor.Name,
		&e.ActorUserID, &e.Target.Type, &e.Target.ID, &e.Target.Name, &e.TargetOwnerID,
		&e.IP, &e.UserAgent, &details)
	if err != nil {
		return nil, wrap("read event", err)
	}
	e.Time = fromMicros(at)
	if e.Details, err = parseObject(details); err != nil {
		return nil, wrap("read event "+e.ID, err)
	}
	return &e, nil
}
