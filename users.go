package keyward

import (
	"context"
	"net/mail"
	"strings"
)

// UserInput is a request to create a user.
type UserInput struct {
	Email    string
	Name     string
	Kind     string // "": user
	Roles    []string
	Licensed *bool // nil: true
	Password *string
}

// UserPatch changes a user; nil fields stay as they are.
type UserPatch struct {
	Name     *string
	Roles    *[]string
	Licensed *bool
	Password *string
}

// UserQuery is a request for one page of users.
type UserQuery struct {
	Q         string
	Kind      string
	PageSize  int
	PageToken string
}

func checkRoles(roles []string) ([]string, error) {
	out := []string{}
	for _, want := range []string{RoleTenantAdmin, RoleDeveloper} {
		for _, r := range roles {
			if r == want {
				out = append(out, r)
				break
			}
		}
	}
	for _, r := range roles {
		if r != RoleTenantAdmin && r != RoleDeveloper {
			return nil, Errorf(EInvalid, "unknown role %q: roles are tenant_admin and developer", truncate(r, 64))
		}
	}
	return out, nil
}

func checkEmail(e string) (string, error) {
	e = strings.TrimSpace(e)
	if e == "" {
		return "", Errorf(EInvalid, "email is required")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > 254 {
		return "", Errorf(EInvalid, "email must be a plain address such as ada@example.com")
	}
	return e, nil
}

func checkPassword(pw string) error {
	if len([]rune(pw)) < MinPasswordLen {
		return Errorf(EInvalid, "password must be at least %d characters", MinPasswordLen)
	}
	if len(pw) > maxPasswordLen {
		return Errorf(EInvalid, "password must be at most %d bytes", maxPasswordLen)
	}
	return nil
}

func (p *Principal) requireAdmin() error {
	if !p.IsAdmin() {
		return Errorf(EPermissionDenied, "this needs the tenant_admin role")
	}
	return nil
}

// ListUsers pages through the tenant's users (tenant admins only).
func (s *Service) ListUsers(ctx context.Context, p *Principal, q UserQuery) (*UserPage, error) {
	if err := p.requireAdmin(); err != nil {
		return nil, err
	}
	f := UserFilter{TenantID: p.Tenant.ID, Q: q.Q, Kind: q.Kind, PageToken: q.PageToken}
	var err error
	if f.PageSize, err = checkPageSize(q.PageSize); err != nil {
		return nil, err
	}
	if q.Kind != "" && q.Kind != KindUser && q.Kind != KindSystem {
		return nil, Errorf(EInvalid, "kind must be user or system")
	}
	if len(q.Q) > 255 {
		return nil, Errorf(EInvalid, "q must be at most 255 characters")
	}
	var page *UserPage
	err = s.store.View(ctx, func(tx Tx) (err error) {
		page, err = tx.ListUsers(ctx, f)
		return err
	})
	return page, err
}

// GetUser reads a user: tenant admins any, everyone else only themselves.
func (s *Service) GetUser(ctx context.Context, p *Principal, id string) (*User, error) {
	if !p.IsAdmin() && id != p.User.ID {
		return nil, Errorf(ENotFound, "user not found")
	}
	var u *User
	err := s.store.View(ctx, func(tx Tx) (err error) {
		u, err = tx.UserByID(ctx, p.Tenant.ID, id)
		return err
	})
	return u, err
}

// CreateUser adds a person or a system user (tenant admins only).
func (s *Service) CreateUser(ctx context.Context, p *Principal, in UserInput) (*User, error) {
	if err := p.canWrite(); err != nil {
		return nil, err
	}
	if err := p.requireAdmin(); err != nil {
		return nil, err
	}
	return s.createUser(ctx, p.Tenant.ID, p.Actor(), in)
}

func (s *Service) createUser(ctx context.Context, tenantID string, actor Actor, in UserInput) (*User, error) {
	now := s.Now()
	u := &User{TenantID: tenantID, Kind: in.Kind, Licensed: true, CreatedAt: now, UpdatedAt: now}
	var err error
	if u.Email, err = checkEmail(in.Email); err != nil {
		return nil, err
	}
	u.Name = strings.TrimSpace(in.Name)
	if err := checkText("name", u.Name, 1, maxNameLen); err != nil {
		return nil, err
	}
	switch u.Kind {
	case "":
		u.Kind = KindUser
	case KindUser, KindSystem:
	default:
		return nil, Errorf(EInvalid, "kind must be user or system")
	}
	if u.Roles, err = checkRoles(in.Roles); err != nil {
		return nil, err
	}
	if in.Licensed != nil {
		u.Licensed = *in.Licensed
	}
	if in.Password != nil {
		if u.Kind == KindSystem {
			return nil, Errorf(EInvalid, "a system user never logs in and has no password")
		}
		if err := checkPassword(*in.Password); err != nil {
			return nil, err
		}
		if u.PasswordHash, err = HashPassword(s.rand, s.pw, *in.Password); err != nil {
			return nil, err
		}
	}
	u.ID = s.newID(PrefixUser)
	err = s.store.Update(ctx, func(tx Tx) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, s.event(ctx, now, tenantID, ActionUserCreated, actor, userRef(u), u.ID,
			map[string]any{"email": u.Email, "kind": u.Kind, "roles": u.Roles, "licensed": u.Licensed}))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser changes a user. Tenant admins change anyone's name, roles,
// license and password; everyone may change their own name and password. The
// tenant always keeps at least one tenant admin.
func (s *Service) UpdateUser(ctx context.Context, p *Principal, id string, patch UserPatch) (*User, error) {
	if err := p.canWrite(); err != nil {
		return nil, err
	}
	if !p.IsAdmin() {
		if id != p.User.ID {
			return nil, Errorf(ENotFound, "user not found")
		}
		if patch.Roles != nil || patch.Licensed != nil {
			return nil, Errorf(EPermissionDenied, "only a tenant admin changes roles and licenses")
		}
	}
	var roles []string
	if patch.Roles != nil {
		var err error
		if roles, err = checkRoles(*patch.Roles); err != nil {
			return nil, err
		}
	}
	if patch.Name != nil {
		n := strings.TrimSpace(*patch.Name)
		if err := checkText("name", n, 1, maxNameLen); err != nil {
			return nil, err
		}
		patch.Name = &n
	}
	var pwHash string
	if patch.Password != nil {
		if err := checkPassword(*patch.Password); err != nil {
			return nil, err
		}
		var err error
		if pwHash, err = HashPassword(s.rand, s.pw, *patch.Password); err != nil {
			return nil, err
		}
	}
	now := s.Now()
	var (
		u      *User
		hashes [][]byte // the user's keys, when their owner's name changes
	)
	err := s.store.Update(ctx, func(tx Tx) (err error) {
		hashes = nil
		if u, err = tx.UserByID(ctx, p.Tenant.ID, id); err != nil {
			return err
		}
		details := map[string]any{}
		if patch.Name != nil && *patch.Name != u.Name {
			details["name"] = map[string]any{"from": u.Name, "to": *patch.Name}
			u.Name = *patch.Name
			// A cached key shows its owner's name (GET /v1/me).
			keys, err := tx.OwnerKeys(ctx, p.Tenant.ID, u.ID)
			if err != nil {
				return err
			}
			for _, k := range keys {
				hashes = append(hashes, k.Hash)
			}
		}
		if patch.Roles != nil && strings.Join(roles, ",") != strings.Join(u.Roles, ",") {
			if u.IsAdmin() && !contains(roles, RoleTenantAdmin) {
				n, err := tx.CountAdmins(ctx, p.Tenant.ID)
				if err != nil {
					return err
				}
				if n <= 1 {
					return Errorf(EConflict, "the tenant must keep at least one tenant admin")
				}
			}
			details["roles"] = map[string]any{"from": u.Roles, "to": roles}
			u.Roles = roles
		}
		if patch.Licensed != nil && *patch.Licensed != u.Licensed {
			details["licensed"] = map[string]any{"from": u.Licensed, "to": *patch.Licensed}
			u.Licensed = *patch.Licensed
		}
		if patch.Password != nil {
			if u.Kind == KindSystem {
				return Errorf(EInvalid, "a system user never logs in and has no password")
			}
			u.PasswordHash = pwHash
			details["password"] = "changed"
		}
		u.UpdatedAt = now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, s.event(ctx, now, p.Tenant.ID, ActionUserUpdated, p.Actor(), userRef(u), u.ID, details))
	})
	if err != nil {
		return nil, err
	}
	if len(hashes) > 0 {
		s.onChange(Change{KeyHashes: hashes})
	}
	return u, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// DeleteUser removes a user and every key of that user (tenant admins only;
// nobody deletes themselves, so a tenant never loses its last admin this way).
func (s *Service) DeleteUser(ctx context.Context, p *Principal, id string) error {
	if err := p.canWrite(); err != nil {
		return err
	}
	// Another user is invisible to a non-admin: not found, as in GetUser.
	if !p.IsAdmin() && id != p.User.ID {
		return Errorf(ENotFound, "user not found")
	}
	if err := p.requireAdmin(); err != nil {
		return err
	}
	if id == p.User.ID {
		return Errorf(EConflict, "you cannot delete yourself")
	}
	now := s.Now()
	var hashes [][]byte
	err := s.store.Update(ctx, func(tx Tx) error {
		hashes = nil
		u, err := tx.UserByID(ctx, p.Tenant.ID, id)
		if err != nil {
			return err
		}
		keys, err := tx.OwnerKeys(ctx, p.Tenant.ID, id)
		if err != nil {
			return err
		}
		if err := tx.DeleteUser(ctx, p.Tenant.ID, id); err != nil {
			return err
		}
		events := make([]*Event, 0, len(keys)+1)
		for _, k := range keys {
			hashes = append(hashes, k.Hash)
			events = append(events, s.event(ctx, now, p.Tenant.ID, ActionKeyDeleted, p.Actor(), keyRef(k), k.OwnerID,
				map[string]any{"status": k.Status(now), "reason": "owner deleted"}))
		}
		events = append(events, s.event(ctx, now, p.Tenant.ID, ActionUserDeleted, p.Actor(), userRef(u), u.ID,
			map[string]any{"email": u.Email, "keys_deleted": len(keys)}))
		return tx.InsertEvents(ctx, events...)
	})
	if err != nil {
		return err
	}
	if len(hashes) > 0 {
		s.onChange(Change{KeyHashes: hashes})
	}
	return nil
}

// Me is what the caller sees of itself.
func (s *Service) Me(ctx context.Context, p *Principal) (*User, *Tenant, *Key) {
	return p.User, p.Tenant, p.Key
}
