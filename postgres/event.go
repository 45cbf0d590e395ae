package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
)

const eventColumns = `id, tenant_id, time, action, actor_type, actor_id, actor_name, actor_user_id,
	target_type, target_id, target_name, target_owner_id, ip, user_agent, details`

// eventValues are e's values in the order of eventColumns, with details
// (its Details as JSON, in the form the statement takes).
func eventValues(e *keyward.Event, details any) []any {
	return []any{e.ID, e.TenantID, micros(e.Time), e.Action,
		e.Actor.Type, e.Actor.ID, e.Actor.Name, e.ActorUserID,
		e.Target.Type, e.Target.ID, e.Target.Name, e.TargetOwnerID,
		e.IP, e.UserAgent, details}
}

// eventColumnList is eventColumns for COPY.
var eventColumnList = strings.Split(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(eventColumns), ",")

const qInsertEvent = `INSERT INTO events (` + eventColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::text::jsonb)`

// InsertEvents appends events to the audit trail in one round trip. A nil
// Details is stored as {}.
func (t *tx) InsertEvents(ctx context.Context, events ...*keyward.Event) error {
	if len(events) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, e := range events {
		if e.ID == "" {
			return errors.New("postgres: insert event: empty id")
		}
		details, err := jsonObject(e.Details)
		if err != nil {
			return wrap("insert event "+e.Action, err)
		}
		b.Queue(qInsertEvent, eventValues(e, details)...)
	}
	err := t.tx.SendBatch(ctx, b).Close()
	if isUnique(err) {
		return keyward.Errorf(keyward.EConflict, "an event with this id already exists")
	}
	if err != nil {
		return wrap("insert events", err)
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
		where = []string{"tenant_id = @tenant"}
		args  = pgx.NamedArgs{"tenant": f.TenantID}
	)
	if f.Action != "" {
		where = append(where, "action = @action")
		args["action"] = f.Action
	}
	if f.KeyID != "" {
		where = append(where, "target_type = 'key' AND target_id = @key")
		args["key"] = f.KeyID
	}
	if f.ActorID != "" {
		where = append(where, "(actor_id = @actor OR actor_user_id = @actor)")
		args["actor"] = f.ActorID
	}
	if f.Since != nil {
		where = append(where, "time >= @since")
		args["since"] = micros(*f.Since)
	}
	if f.Until != nil {
		where = append(where, "time < @until")
		args["until"] = micros(*f.Until)
	}
	if f.VisibleTo != "" {
		where = append(where, "(actor_user_id = @visible OR target_owner_id = @visible)")
		args["visible"] = f.VisibleTo
	}

	page := &keyward.EventPage{}
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM events WHERE `+
		strings.Join(where, " AND "), args).Scan(&page.Total); err != nil {
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
		where = append(where, "(time, id) < (@cursor_time::bigint, @cursor_id::text)")
		args["cursor_time"], args["cursor_id"] = at, c.ID
	}
	size := pageSize(f.PageSize)
	args["limit"] = size + 1
	rows, err := t.tx.Query(ctx, `SELECT `+eventColumns+`::text FROM events WHERE `+
		strings.Join(where, " AND ")+` ORDER BY time DESC, id DESC LIMIT @limit`, args)
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

func scanEvent(row pgx.Row) (*keyward.Event, error) {
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
