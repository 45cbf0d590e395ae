package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/keyward/keyward"
)

const userColumns = `u.id, u.tenant_id, u.email, u.name, u.kind, u.roles, u.licensed,
	u.password_hash, u.created_at, u.updated_at`

var (
	qInsertUser = writeQuery(`INSERT INTO users (id, tenant_id, email, name, kind, roles, licensed,
		password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	qUserByID     = readQuery(`SELECT ` + userColumns + ` FROM users u WHERE u.tenant_id = ? AND u.id = ?`)
	qUsersByEmail = readQuery(`SELECT ` + userColumns + ` FROM users u WHERE u.email = ?
		ORDER BY u.tenant_id, u.id`)
	qUpdateUser = writeQuery(`UPDATE users SET name = ?, roles = ?, licensed = ?, password_hash = ?,
		updated_at = ? WHERE tenant_id = ? AND id = ?`)
	qDeleteUser  = writeQuery(`DELETE FROM users WHERE tenant_id = ? AND id = ?`)
	qCountAdmins = readQuery(`SELECT count(*) FROM users u WHERE u.tenant_id = ?
		AND EXISTS (SELECT 1 FROM json_each(u.roles) WHERE json_each.value = ?)`)
	qUserExists = readQuery(`SELECT 1 FROM users WHERE tenant_id = ? AND id = ?`)
)

func (t *tx) CreateUser(ctx context.Context, u *keyward.User) error {
	if u.ID == "" {
		return errors.New("sqlite: create user: empty id")
	}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	roles, err := jsonList(u.Roles)
	if err != nil {
		return wrap("create user", err)
	}
	_, err = t.exec(ctx, qInsertUser, u.ID, u.TenantID, u.Email, u.Name, u.Kind, roles,
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
	u, err := scanUser(t.queryRow(ctx, qUserByID, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.ENotFound, "user not found")
	}
	return u, err
}

func (t *tx) UsersByEmail(ctx context.Context, email string) ([]*keyward.User, error) {
	rows, err := t.query(ctx, qUsersByEmail, email)
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
	res, err := t.exec(ctx, qUpdateUser, u.Name, roles, u.Licensed, u.PasswordHash,
		micros(u.UpdatedAt), u.TenantID, u.ID)
	if err != nil {
		return wrap("update user", err)
	}
	return mustChange("update user", res, "user not found")
}

// DeleteUser deletes the user; its keys and sessions go with it through the
// ON DELETE CASCADE foreign keys. Its events stay.
func (t *tx) DeleteUser(ctx context.Context, tenantID, id string) error {
	res, err := t.exec(ctx, qDeleteUser, tenantID, id)
	if err != nil {
		return wrap("delete user", err)
	}
	return mustChange("delete user", res, "user not found")
}

func (t *tx) CountAdmins(ctx context.Context, tenantID string) (int, error) {
	var n int
	if err := t.queryRow(ctx, qCountAdmins, tenantID, keyward.RoleTenantAdmin).Scan(&n); err != nil {
		return 0, wrap("count admins", err)
	}
	return n, nil
}

// LockUser only checks that the user exists: every write transaction already
// holds SQLite's single write lock (BEGIN IMMEDIATE) until it ends.
func (t *tx) LockUser(ctx context.Context, tenantID, id string) error {
	var one int
	err := t.queryRow(ctx, qUserExists, tenantID, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
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
		where = []string{"u.tenant_id = :tenant"}
		args  = []any{sql.Named("tenant", f.TenantID)}
	)
	if f.Kind != "" {
		where = append(where, "u.kind = :kind")
		args = append(args, sql.Named("kind", f.Kind))
	}
	if f.Q != "" {
		c := func(col string) string { return searched(col, f.Q) }
		where = append(where, `(`+c("u.name")+` LIKE :q ESCAPE '\' OR `+c("u.email")+` LIKE :q ESCAPE '\' OR `+c("u.id")+` LIKE :q ESCAPE '\')`)
		args = append(args, sql.Named("q", likePattern(f.Q)))
	}
	page := &keyward.UserPage{}
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM users u WHERE `+
		strings.Join(where, " AND "), args...).Scan(&page.Total); err != nil {
		return nil, wrap("count users", err)
	}

	if f.PageToken != "" {
		c, err := keyward.DecodeCursor(f.PageToken, fp)
		if err != nil {
			return nil, err
		}
		where = append(where, "(u.name, u.id) > (:cursor_value, :cursor_id)")
		args = append(args, sql.Named("cursor_value", c.Value), sql.Named("cursor_id", c.ID))
	}
	size := pageSize(f.PageSize)
	args = append(args, sql.Named("limit", size+1))
	rows, err := t.tx.QueryContext(ctx, `SELECT `+userColumns+` FROM users u WHERE `+
		strings.Join(where, " AND ")+` ORDER BY u.name, u.id LIMIT :limit`, args...)
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
		page.NextPageToken = keyward.EncodeCursor(keyward.Cursor{Value: last.Name, ID: last.ID, Filter: fp})
	}
	page.Users = users
	return page, nil
}

// scanUser reads one row of userColumns. It returns sql.ErrNoRows unwrapped.
func scanUser(row scanner) (*keyward.User, error) {
	var (
		u                keyward.User
		roles            string
		created, updated int64
	)
	err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.Name, &u.Kind, &roles, &u.Licensed,
		&u.PasswordHash, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
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
