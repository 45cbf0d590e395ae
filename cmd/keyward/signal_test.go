package main

// Graceful stop of the real binary: a request in flight when the signal
// arrives completes, the process exits 0, and last-used times noted only in
// memory are flushed to the database.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binDir  string // removed by TestMain
	binPath string
	binErr  error
)

// mustBinary builds the command once per test run.
func mustBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "keyward-e2e-"); binErr != nil {
			return
		}
		goTool, err := exec.LookPath("go") // go test puts its own go first in PATH
		if err != nil {
			binErr = fmt.Errorf("the go command is needed to build keyward: %v", err)
			return
		}
		binPath = filepath.Join(binDir, "keyward")
		out, err := exec.Command(goTool, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// cleanEnv is the test's environment without KEYWARD_* variables, so that
// only the flags given configure the binary.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYWARD_") {
			env = append(env, kv)
		}
	}
	return env
}

// proc is a running `keyward serve` whose JSON log lines are kept.
type proc struct {
	cmd     *exec.Cmd
	url     string
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced at every new line
	done    chan struct{} // closed when the process has exited
	err     error         // cmd.Wait's answer, once done
}

func startServe(t *testing.T, bin, db string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, args...)...)
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	line := p.waitLog(t, "keyward serving", 60*time.Second)
	p.url, _ = line["url"].(string)
	if !strings.HasPrefix(p.url, "http://127.0.0.1:") {
		t.Fatalf("serving log line without a url: %v", line)
	}
	return p
}

// log is everything the process wrote to stderr so far.
func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitLog waits for a JSON log line with this msg and returns it.
func (p *proc) waitLog(t *testing.T, msg string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		p.mu.Lock()
		lines, changed := p.lines[seen:], p.changed
		seen = len(p.lines)
		p.mu.Unlock()
		for _, l := range lines {
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
				return rec
			}
		}
		select {
		case <-changed:
		case <-p.done:
			// Read what came last before giving up.
			p.mu.Lock()
			more := len(p.lines) > seen
			p.mu.Unlock()
			if !more {
				t.Fatalf("keyward exited (%v) without logging %q; log:\n%s", p.err, msg, p.log())
			}
		case <-deadline.C:
			t.Fatalf("no %q log line within %s; log:\n%s", msg, timeout, p.log())
		}
	}
}

// wait requires the process to exit cleanly (code 0, no error logged) within a minute.
func (p *proc) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("keyward did not exit within a minute; log:\n%s", p.log())
	}
	if p.err != nil {
		t.Fatalf("keyward exited with %v, want exit code 0; log:\n%s", p.err, p.log())
	}
	for _, l := range strings.Split(p.log(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) != nil {
			t.Errorf("log line is not JSON: %q", l)
			continue
		}
		if rec["level"] == "ERROR" {
			t.Errorf("error logged: %s", l)
		}
	}
}

func TestGracefulStop(t *testing.T) {
	bin := mustBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) { testGracefulStop(t, bin, sig) })
	}
}

func testGracefulStop(t *testing.T, bin string, sig syscall.Signal) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "k.db")
	rec := &recorder{}

	// Bootstrap with the binary.
	const password = "signal test password"
	boot := exec.Command(bin, "admin", "bootstrap", "--db", db, "--tenant", "signals", "--email", "ops@signals.example",
		"--password-stdin", "--json")
	boot.Env = cleanEnv()
	boot.Stdin = strings.NewReader(password + "\n")
	var stdout, stderr strings.Builder
	boot.Stdout, boot.Stderr = &stdout, &stderr
	if err := boot.Run(); err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, stderr.String())
	}
	var b bootstrapOut
	if err := json.Unmarshal([]byte(stdout.String()), &b); err != nil {
		t.Fatalf("bootstrap printed %q: %v", stdout.String(), err)
	}
	rec.issue("secret", b.Secret, "admin bootstrap")

	// An hour between flushes: last_used_at stays in memory until the stop.
	p := startServe(t, bin, db, "--usage-interval", "1h")
	c := newClient(p.url, rec)
	k := c.createKey(t, b.Secret, map[string]any{"name": "used-before-stop"})
	usedAt := time.Now().Truncate(time.Microsecond)
	c.wantVerify(t, k.Secret, "VALID", k.ID)
	if got := c.getKey(t, b.Secret, k.ID); got.LastUsedAt != nil {
		t.Fatalf("last_used_at written before the stop with an hour's interval: %v", got.LastUsedAt)
	}

	// A request in flight: the server has read its headers and waits for
	// its body (Expect: 100-continue tells us when the handler reads it).
	slow := newClient(p.url, rec)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = time.Minute
	defer tr.CloseIdleConnections()
	slow.transport = tr
	bodyR, bodyW := io.Pipe()
	defer bodyW.Close()
	reading := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got100Continue: func() { once.Do(func() { close(reading) }) }})
	req, err := http.NewRequestWithContext(ctx, "POST", p.url+"/v1/keys/verify", bodyR)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	type result struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := slow.httpClient(t).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- result{status: resp.StatusCode, body: body, err: err}
	}()
	select {
	case <-reading:
	case r := <-done:
		t.Fatalf("the slow request ended before its body was sent: %+v", r)
	case <-time.After(30 * time.Second):
		t.Fatal("the server never started reading the slow request's body")
	}

	// The signal: the server stops listening but waits for the request.
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "stopping: finishing requests in flight and flushing usage", 30*time.Second)
	host := strings.TrimPrefix(p.url, "http://")
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", host, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 10 s after the signal")
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-p.done:
		t.Fatalf("keyward exited (%v) with a request in flight; log:\n%s", p.err, p.log())
	default:
	}
	slowAt := time.Now().Truncate(time.Microsecond)
	if _, err := fmt.Fprintf(bodyW, `{"key": %q}`, k.Secret); err != nil {
		t.Fatalf("send the slow body: %v", err)
	}
	bodyW.Close()
	r := <-done
	if r.err != nil || r.status != 200 {
		t.Fatalf("the request in flight: %d %s %v", r.status, r.body, r.err)
	}
	var v verifyAnswer
	if err := json.Unmarshal(r.body, &v); err != nil || v.Code != "VALID" {
		t.Fatalf("the request in flight answered %s (%v)", r.body, err)
	}
	p.wait(t)
	p.waitLog(t, "stopped", time.Second)
	logs := map[string]string{"the first process's log": p.log()}

	// After a restart, the uses are there: the one before the signal and the
	// one in flight during the stop.
	p2 := startServe(t, bin, db, "--usage-interval", "1h")
	c = newClient(p2.url, rec)
	got := c.getKey(t, b.Secret, k.ID)
	if got.LastUsedAt == nil || got.LastUsedAt.Before(usedAt) {
		t.Fatalf("last_used_at after restart: %v, want the use at %s flushed on stop", got.LastUsedAt, usedAt)
	}
	if got.LastUsedAt.Before(slowAt) {
		t.Errorf("last_used_at after restart: %s, before the request in flight at %s", got.LastUsedAt, slowAt)
	}
	tn := &tenant{ID: b.TenantID, Session: c.login(t, "ops@signals.example", password).Token}
	events := collectEvents(t, c, []*tenant{tn})

	// A stop with nothing in flight.
	if err := p2.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	p2.wait(t)
	logs["the second process's log"] = p2.log()
	assertNoLeaks(t, rec, logs, events, dir)
}

// TestServeRefusesBadFlags: a bad flag or configuration fails fast.
func TestServeRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"unknown flag", []string{"serve", "--no-such-flag"}, 2},
		{"bad interval", []string{"serve", "--usage-interval", "soon"}, 2},
		{"bad log level", []string{"serve", "--log-level", "chatty", "--addr", "127.0.0.1:0"}, 1},
		{"bad db", []string{"serve", "--db", "mysql://x", "--addr", "127.0.0.1:0"}, 1},
		{"short pepper", []string{"serve", "--db", "sqlite:" + filepath.Join(dir, "k.db"), "--pepper-file", writeFile(t, dir, "pepper", "short"), "--addr", "127.0.0.1:0"}, 1},
		{"unknown command", []string{"serv"}, 2},
		{"no command", nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, "", tc.args...)
			if code != tc.code || stderr == "" {
				t.Errorf("exit %d with stderr %q, want %d and a message", code, stderr, tc.code)
			}
		})
	}
}

// TestServeAddrInUse: a listen address that is taken fails the command
// (exit 1) and leaves the database usable.
func TestServeAddrInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	code, _, stderr := runCmd(t, "", "serve", "--addr", l.Addr().String(), "--db", "sqlite:"+filepath.Join(dir, "k.db"))
	if code != 1 || !strings.Contains(stderr, "address already in use") {
		t.Errorf("serve on a taken address: exit %d, stderr %q", code, stderr)
	}
	srv := startServer(t, dir, &recorder{}, serverOpts{})
	srv.c.must(t, 200, "GET", "/readyz", "", nil, nil)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
