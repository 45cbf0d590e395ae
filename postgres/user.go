package postgres

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
)

const userColumns = `u.id, u.tenant_id, u.email, u.name, u.kind, u.roles::text, u.licensed,
	u.password_hash, u.created_at, u.updated_at`

const (
	qInsertUser = `INSERT INTO users (id, tenant_id, email, name, kind, roles, licensed,
		password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9, $10)`
	qUserByID     = `SELECT ` + userColumns + ` FROM users u WHERE u.tenant_id = $1 AND u.id = $2`
	qUsersByEmail = `SELECT ` + userColumns + ` FROM users u WHERE lower(u.email) = $1
		ORDER BY u.tenant_id, u.id`
	qUpdateUser = `UPDATE users SET name = $1, roles = $2::text::jsonb, licensed = $3, password_hash = $4,
		updated_at = $5 WHERE tenant_id = $6 AND id = $7`
	qDeleteUser  = `DELETE FROM users WHERE tenant_id = $1 AND id = $2`
	qCountAdmins = `SELECT count(*) FROM users u WHERE u.tenant_id = $1 AND u.roles ? $2::text`
	// FOR NO KEY UPDATE serializes the transactions that lock one owner
	// without blocking the foreign key checks (FOR KEY SHARE) of inserts.
	qLockUser = `SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE`
)

func (t *tx) CreateUser(ctx context.Context, u *keyward.User) error {
	if u.ID == "" {
		return errors.New("postgres: create user: empty id")
	}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	roles, err := jsonList(u.Roles)
	if err != nil {
		return wrap("create user", err)
	}
	_, err = t.tx.Exec(ctx, qInsertUser, u.ID, u.TenantID, u.Email, u.Name, u.Kind, roles,
		u.Licensed, u.PasswordHash, micros(u.CreatedAt), micros(u.UpdatedAt))
	switch {
	case isUnique(err):
		return keyward.Errorf(keyward.EConflict, "a user with this email already exists")
	case isForeignKey(err):
		return keyward.Errorf(keyward.ENotFound, "tenant not found")
	case err != nil:
		return wrap("create user", err)
	}
	return nil
}

func (t *tx) UserByID(ctx context.Context, tenantID, id string) (*keyward.User, error) {
	u, err := scanUser(t.tx.QueryRow(ctx, qUserByID, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, keyward.Errorf(keyward.ENotFound, "user not found")
	}
	return u, err
}

func (t *tx) UsersByEmail(ctx context.Context, email string) ([]*keyward.User, error) {
	rows, err := t.tx.Query(ctx, qUsersByEmail, fold(email))
	if err != nil {
		return nil, wrap("users by email", err)
	}
	return collect(rows, "users by email", scanUser)
}

func (t *tx) UpdateUser(ctx context.Context, u *keyward.User) error {
	if u.Roles == nil {
		u.Roles = []string{}
	}
	roles, err := jsonList(u.Roles)
	if err != nil {
		return wrap("update user", err)
	}
	tag, err := t.tx.Exec(ctx, qUpdateUser, u.Name, roles, u.Licensed, u.PasswordHash,
		micros(u.UpdatedAt), u.TenantID, u.ID)
	if err != nil {
		return wrap("update user", err)
	}
	return mustChange(tag, "user not found")
}

// DeleteUser deletes the user; its keys and sessions go with it through the
// ON DELETE CASCADE foreign keys. Its events stay.
func (t *tx) DeleteUser(ctx context.Context, tenantID, id string) error {
	tag, err := t.tx.Exec(ctx, qDeleteUser, tenantID, id)
	if err != nil {
		return wrap("delete user", err)
	}
	return mustChange(tag, "user not found")
}

func (t *tx) CountAdmins(ctx context.Context, tenantID string) (int, error) {
	var n int
	if err := t.tx.QueryRow(ctx, qCountAdmins, tenantID, keyward.RoleTenantAdmin).Scan(&n); err != nil {
		return 0, wrap("count admins", err)
	}
	return n, nil
}

// LockUser locks the owner's row until the transaction ends, so that write
// transactions on one owner are serialized across connections and nodes.
func (t *tx) LockUser(ctx context.Context, tenantID, id string) error {
	var one int
	err := t.tx.QueryRow(ctx, qLockUser, tenantID, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return keyward.Errorf(keyward.ENotFound, "user not found")
	}
	if err != nil {
		return wrap("lock user", err)
	}
	return nil
}

func (t *tx) ListUsers(ctx context.Context, f keyward.UserFilter) (*keyward.UserPage, error) {
	fp := keyward.Fingerprint("users", f.TenantID, f.Q, f.Kind)
	var (
		where = []string{"u.tenant_id = @tenant"}
		args  = pgx.NamedArgs{"tenant": f.TenantID}
	)
	if f.Kind != "" {
		where = append(where, "u.kind = @kind")
		args["kind"] = f.Kind
	}
	if f.Q != "" {
		c := func(col string) string { return lowered(col, f.Q, t.fold) }
		where = append(where, `(`+c("u.name")+` LIKE @q ESCAPE '\' OR `+c("u.email")+` LIKE @q ESCAPE '\'
			OR `+c("u.id")+` LIKE @q ESCAPE '\')`)
		args["q"] = likePattern(f.Q)
	}
	page := &keyward.UserPage{}
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM users u WHERE `+
		strings.Join(where, " AND "), args).Scan(&page.Total); err != nil {
		return nil, wrap("count users", err)
	}

	if f.PageToken != "" {
		c, err := keyward.DecodeCursor(f.PageToken, fp)
		if err != nil {
			return nil, err
		}
		where = append(where, "(lower(u.name), u.id) > (@cursor_value::text, @cursor_id::text)")
		args["cursor_value"], args["cursor_id"] = c.Value, c.ID
	}
	size := pageSize(f.PageSize)
	args["limit"] = size + 1
	rows, err := t.tx.Query(ctx, `SELECT `+userColumns+` FROM users u WHERE `+
		strings.Join(where, " AND ")+` ORDER BY lower(u.name), u.id LIMIT @limit`, args)
	if err != nil {
		return nil, wrap("list users", err)
	}
	users, err := collect(rows, "list users", scanUser)
	if err != nil {
		return nil, err
	}
	if len(users) > size {
		users = users[:size]
		last := users[size-1]
		page.NextPageToken = keyward.EncodeCursor(keyward.Cursor{Value: fold(last.Name), ID: last.ID, Filter: fp})
	}
	page.Users = users
	return page, nil
}

// scanUser reads one row of userColumns. It returns pgx.ErrNoRows unwrapped.
func scanUser(row pgx.Row) (*keyward.User, error) {
	var (
		u                keyward.User
		roles            string
		created, updated int64
	)
	err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.Name, &u.Kind, &roles, &u.Licensed,
		&u.PasswordHash, &created, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if err != nil {
		return nil, wrap("read user", err)
	}
	if u.Roles, err = parseList(roles); err != nil {
		return nil, wrap("read user "+u.ID, err)
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}
