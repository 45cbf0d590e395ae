package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/storetest"
)

// defaultURL is the server tried when KEYWARD_TEST_POSTGRES_URL is not set.
const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	serverOnce sync.Once
	serverURL  string // an administrative connection URL, "" when none
	serverWhy  string // why there is no server
	cluster    *throwaway
)

// TestMain stops the throwaway cluster, if one was started.
func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.stop()
	}
	os.Exit(code)
}

// server finds a PostgreSQL server: KEYWARD_TEST_POSTGRES_URL, else the
// local default, else a throwaway cluster (initdb/pg_ctl on PATH). Without
// one it skips the test, or fails it under KEYWARD_TEST_REQUIRE=1.
func server(t *testing.T) string {
	t.Helper()
	serverOnce.Do(func() {
		if u := os.Getenv("KEYWARD_TEST_POSTGRES_URL"); u != "" {
			if err := ping(u); err != nil {
				serverWhy = fmt.Sprintf("KEYWARD_TEST_POSTGRES_URL does not answer: %v", err)
				return
			}
			serverURL = u
			return
		}
		if ping(defaultURL) == nil {
			serverURL = defaultURL
			return
		}
		c, err := startThrowaway()
		if err != nil {
			serverWhy = "no PostgreSQL server (set KEYWARD_TEST_POSTGRES_URL): " + err.Error()
			return
		}
		cluster, serverURL = c, c.url
	})
	if serverURL == "" {
		if os.Getenv("KEYWARD_TEST_REQUIRE") == "1" {
			t.Fatalf("KEYWARD_TEST_REQUIRE=1: %s", serverWhy)
		}
		t.Skip(serverWhy)
	}
	return serverURL
}

func ping(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// newDatabase creates an empty database of its own for t, dropped when t
// ends, and returns its URL.
func newDatabase(t *testing.T) string {
	t.Helper()
	admin := server(t)
	b := make([]byte, 8)
	rand.Read(b)
	name := "kwtest_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(admin), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return withDatabase(t, admin, name)
}

// withDatabase is the URL u with its database replaced.
func withDatabase(t *testing.T, u, name string) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "postgres" && parsed.Scheme != "postgresql") {
		t.Fatalf("the test server must be given as a postgres:// URL, got %q", redact(u))
	}
	parsed.Path = "/" + name
	return parsed.String()
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return "(unparsable URL)"
}

func open(t *testing.T) keyward.Store {
	t.Helper()
	db, err := postgres.Open(context.Background(), newDatabase(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, open)
}

// TestReopen checks that opening a migrated database again is a no-op that
// keeps the data and the schema version.
func TestReopen(t *testing.T) {
	u := newDatabase(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx keyward.Tx) error {
		return tx.CreateTenant(ctx, &keyward.Tenant{ID: "tnt_1", Name: "Acme", CreatedAt: time.Now(),
			Settings: keyward.DefaultSettings()})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = postgres.Open(ctx, u)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	v2, err := db.SchemaVersion(ctx)
	if err != nil || v2 != v1 || v1 < 1 {
		t.Errorf("schema version %d, then %d (%v)", v1, v2, err)
	}
	if err := db.View(ctx, func(tx keyward.Tx) error {
		_, err := tx.TenantByName(ctx, "ACME")
		return err
	}); err != nil {
		t.Errorf("tenant after reopen: %v", err)
	}
}

// TestSchemaTooNew checks that Open refuses a database migrated by a newer build.
func TestSchemaTooNew(t *testing.T) {
	u := newDatabase(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx,
		`INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, v+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = postgres.Open(ctx, u)
	if err == nil {
		db.Close()
		t.Fatal("Open accepted a schema newer than the build")
	}
	if !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Errorf("Open: %v, want ErrSchemaTooNew", err)
	}
}

// TestOpenRefusesBadDSN checks that a malformed connection string is an error, not a panic.
func TestOpenRefusesBadDSN(t *testing.T) {
	if _, err := postgres.Open(context.Background(), "postgres://%zz"); err == nil {
		t.Error("Open accepted a malformed URL")
	}
}

// throwaway is a PostgreSQL cluster in a temporary folder, for machines
// without a running server.
type throwaway struct {
	dir, pgCtl, url string
	command         func(name string, args ...string) *exec.Cmd
}

func startThrowaway() (*throwaway, error) {
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		return nil, errors.New("initdb not on PATH")
	}
	pgCtl, err := exec.LookPath("pg_ctl")
	if err != nil {
		return nil, errors.New("pg_ctl not on PATH")
	}
	dir, err := os.MkdirTemp("", "keyward-pg-")
	if err != nil {
		return nil, err
	}
	// initdb refuses to run as root: then the cluster belongs to the
	// "postgres" system user, when there is one.
	var asUser []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, errors.New("running as root and there is no postgres user for initdb")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	command := func(name string, args ...string) *exec.Cmd {
		if asUser != nil {
			return exec.Command(asUser[0], append(append(asUser[1:], name), args...)...)
		}
		return exec.Command(name, args...)
	}
	data := filepath.Join(dir, "data")
	out, err := command(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	opts := fmt.Sprintf("-p %d -h 127.0.0.1 -k %s -F", port, dir)
	out, err = command(pgCtl, "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "start").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	c := &throwaway{dir: dir, pgCtl: pgCtl, command: command,
		url: "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/postgres?sslmode=disable"}
	if err := ping(c.url); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *throwaway) stop() {
	c.command(c.pgCtl, "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop").Run()
	os.RemoveAll(c.dir)
}
