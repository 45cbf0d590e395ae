package keyward

import (
	"context"
	"time"
)

// Store keeps tenants, users, keys, sessions and events. Nil lists and
// objects (scopes, meta, roles, details) are stored and read back as [] and {}.
// Page tokens are bound to the list, tenant, filters and sort. Implementations
// (package sqlite, later postgres) pass the conformance suite in package
// storetest. They turn driver errors into refusals at their edge: a unique
// violation becomes EConflict, a missing row ENotFound.
type Store interface {
	// Update runs fn in a read-write transaction; an error from fn rolls it
	// back. Write transactions that lock the same owner (Tx.LockUser) are
	// serialized, which makes "count, then insert" atomic.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction over one consistent snapshot.
	View(ctx context.Context, fn func(Tx) error) error
	// KeyForVerify finds a key of any tenant by the digest of its secret,
	// with its tenant's settings, in one read: the hot path's way to the
	// store (a cache's fill), so it is one statement where the store can.
	// An unknown digest is ENotFound.
	KeyForVerify(ctx context.Context, hash []byte) (*Key, *Settings, error)
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// Tx is one transaction's view of the store. Every method is scoped to a
// tenant where the data has one; an object of another tenant is ENotFound.
type Tx interface {
	CreateTenant(ctx context.Context, t *Tenant) error
	TenantByID(ctx context.Context, id string) (*Tenant, error)
	// TenantByName finds a tenant by name, case-insensitively; names are unique that way.
	TenantByName(ctx context.Context, name string) (*Tenant, error)
	UpdateSettings(ctx context.Context, tenantID string, s Settings) error

	CreateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, tenantID, id string) (*User, error)
	// UsersByEmail finds the users with this email (case-insensitive) in every
	// tenant, for login.
	UsersByEmail(ctx context.Context, email string) ([]*User, error)
	// UpdateUser writes name, roles, licensed, password hash and updated_at.
	UpdateUser(ctx context.Context, u *User) error
	// DeleteUser deletes the user with its keys and sessions.
	DeleteUser(ctx context.Context, tenantID, id string) error
	ListUsers(ctx context.Context, f UserFilter) (*UserPage, error)
	CountAdmins(ctx context.Context, tenantID string) (int, error)
	// LockUser serializes write transactions on one owner until commit.
	LockUser(ctx context.Context, tenantID, id string) error

	CreateSession(ctx context.Context, s *Session) error
	SessionByHash(ctx context.Context, hash []byte) (*Session, error)
	// DeleteSession removes a session; an unknown id is ENotFound.
	DeleteSession(ctx context.Context, id string) error

	// CreateKey stores k and fills its owner fields (OwnerName, OwnerEmail,
	// Type); nil Scopes and Meta are stored and returned as [] and {}.
	CreateKey(ctx context.Context, k *Key) error
	KeyByID(ctx context.Context, tenantID, id string) (*Key, error)
	// KeyByHash finds a key of any tenant by the digest of its secret.
	KeyByHash(ctx context.Context, hash []byte) (*Key, error)
	// OwnerKeys lists every key of one owner, whatever its status.
	OwnerKeys(ctx context.Context, tenantID, ownerID string) ([]*Key, error)
	// UpdateKey writes name, description, role, scopes, meta, disabled,
	// expires_at, the revocation fields and updated_at. It never writes
	// last_used_at (see TouchKeys) and never un-revokes: a key revoked in the
	// store stays revoked whatever k says, and k's revocation fields are reset
	// to what the store holds.
	UpdateKey(ctx context.Context, k *Key) error
	DeleteKey(ctx context.Context, tenantID, id string) error
	// CountLiveKeys counts the owner's active and inactive keys at now.
	CountLiveKeys(ctx context.Context, tenantID, ownerID string, now time.Time) (int, error)
	ListKeys(ctx context.Context, f KeyFilter) (*KeyPage, error)
	// RevokeKeys revokes, set-wise, every active or inactive key of the
	// tenant (of one owner type when Type is set), sets their updated_at to
	// r.At, writes r.Event for each of them when it is set, and returns the
	// ID and digest of each, ordered by ID. It holds no more than that of
	// each key in memory: a tenant's every key may be a million.
	//
	// A store may commit the revocation as one record of the set and write
	// the keys' rows and events after the transaction (SQLite does, for a
	// large set), if every read from the commit on sees exactly what writing
	// them in the transaction would have left: each key revoked, and each
	// event in the audit trail. Such a store draws those events' IDs itself
	// instead of calling r.NewID.
	RevokeKeys(ctx context.Context, r RevokeSpec) ([]RevokedKey, error)
	// TouchKeys moves last_used_at forward to the given times; it never moves
	// it back, and ignores keys that no longer exist.
	TouchKeys(ctx context.Context, used map[string]time.Time) error
	// ExpiredUnrecorded lists up to limit keys of any tenant that expired at or
	// before now, were not revoked, and have no key.expired event yet.
	ExpiredUnrecorded(ctx context.Context, now time.Time, limit int) ([]*Key, error)
	// MarkExpiryRecorded notes that the key.expired event of these keys exists;
	// unknown ids are ignored.
	MarkExpiryRecorded(ctx context.Context, ids []string) error

	// AddUsage adds to keys' hourly usage counts; counts of keys that no
	// longer exist are dropped.
	AddUsage(ctx context.Context, counts []UsageCount) error
	// KeyUsage lists one key's counts with from <= Hour < to, oldest first.
	KeyUsage(ctx context.Context, tenantID, keyID string, from, to time.Time) ([]UsageCount, error)

	InsertEvents(ctx context.Context, events ...*Event) error
	ListEvents(ctx context.Context, f EventFilter) (*EventPage, error)
}

// Key sort columns of the contract. A leading "-" in the request sorts descending.
var KeySortColumns = []string{"name", "id", "owner", "type", "role", "status",
	"created_at", "updated_at", "expires_at", "last_used_at"}

// KeyFilter selects and orders one page of keys.
type KeyFilter struct {
	TenantID  string
	OwnerID   string // "": every owner
	Q         string // case-insensitive substring of name, id, owner name or email
	Type      string // "", "user" or "system"
	Status    string // "" or one of the four statuses, evaluated at Now
	Sort      string // one of KeySortColumns
	Desc      bool
	PageSize  int
	PageToken string // opaque; from a previous page with the same filter
	Now       time.Time
}

// KeyPage is one page of keys.
type KeyPage struct {
	Keys          []*Key
	NextPageToken string // "": last page
	Total         int
}

// UserFilter selects one page of users, ordered by name.
type UserFilter struct {
	TenantID  string
	Q         string // case-insensitive substring of name, email or id
	Kind      string
	PageSize  int
	PageToken string
}

// UserPage is one page of users.
type UserPage struct {
	Users         []*User
	NextPageToken string
	Total         int
}

// EventFilter selects one page of events, newest first.
type EventFilter struct {
	TenantID string
	Action   string
	KeyID    string // target key
	ActorID  string // the actor, or the user behind an acting key
	Since    *time.Time
	Until    *time.Time
	// VisibleTo, when set, keeps the events a non-administrator may see:
	// actor is that user, or the target is that user or one of its keys.
	VisibleTo string
	PageSize  int
	PageToken string
}

// EventPage is one page of events.
type EventPage struct {
	Events        []*Event
	NextPageToken string
	Total         int
}

// UsageCount is how many verifications of one key ended with one code in
// one hour (Hour is the hour's start, UTC).
type UsageCount struct {
	KeyID string
	Hour  time.Time
	Code  string
	Count int64
}

// RevokeSpec names a set revocation.
type RevokeSpec struct {
	TenantID string
	Type     string // "": every key of the tenant
	At       time.Time
	By       string
	Reason   *string
	// Event, when set, is the event every revoked key gets, written with
	// the revocation: a copy of it whose ID comes from NewID, whose Target
	// is the key (type, ID and name) and whose TargetOwnerID is the key's
	// owner. Its own ID, Target and TargetOwnerID are ignored.
	Event *Event
	NewID func() (string, error)
}

// RevokedKey is a key that RevokeKeys revoked: what the caches that may
// hold it need to forget it.
type RevokedKey struct {
	ID   string
	Hash []byte
}
