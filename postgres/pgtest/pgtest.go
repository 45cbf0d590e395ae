// Package pgtest gives tests a PostgreSQL database of their own: from
// KEYWARD_TEST_POSTGRES_URL, else the local server on 127.0.0.1:5432, else a
// throwaway cluster made with initdb and pg_ctl. Without any, a test skips,
// or fails under KEYWARD_TEST_REQUIRE=1.
package pgtest

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
)

// defaultURL is the server tried when KEYWARD_TEST_POSTGRES_URL is not set.
const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	serverOnce sync.Once
	serverURL  string // an administrative connection URL, "" when none
	serverWhy  string // why there is no server
	cluster    *throwaway
)

// Server finds a PostgreSQL server: KEYWARD_TEST_POSTGRES_URL, else the
// local default, else a throwaway cluster (initdb/pg_ctl on PATH). Without
// one it skips the test, or fails it under KEYWARD_TEST_REQUIRE=1.
func Server(t testing.TB) string {
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

// NewDatabase creates an empty database of its own for t, dropped when t
// ends, and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := Server(t)
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
func withDatabase(t testing.TB, u, name string) string {
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

// Stop stops the throwaway cluster, if one was started; call it from TestMain.
func Stop() {
	if cluster != nil {
		cluster.stop()
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
