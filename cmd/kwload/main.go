// Command kwload measures Keyward's verification over HTTP against a
// baseline, on loopback, with one load generator for both.
//
// It starts, in this process, a Keyward server wired as `keyward serve`
// wires it (SQLite store with --keys seeded keys, verification cache, usage
// recorder, JSON API), unless --url names a running one; and a baseline: a
// minimal net/http handler that decodes the same JSON body ({"key": "..."})
// and answers a fixed body (or, for forward-auth, reads the Authorization
// header and answers 200 with a fixed header). Both listen on 127.0.0.1.
// Then it drives each in turn with the same closed-loop generator: --conns
// HTTP/1.1 keep-alive connections, each sending its next request as soon as
// the previous answer is read, for --duration or --requests, whichever ends
// first, after a --warmup. It prints requests per second, p50 and p99
// latency of each, and the ratio of Keyward's rate to the baseline's.
//
//	go run ./cmd/kwload                          # verify, 10,000 keys
//	go run ./cmd/kwload -mode forward-auth       # GET /v1/auth
//	go run ./cmd/kwload -keys 1000000 -rounds 5  # the figures of docs/performance.md
//
// Every answer is checked (200 and, for verify, "valid":true); any other
// answer is counted as an error and makes the exit status 1.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/api"
	"github.com/keyward/keyward/usage"
	"github.com/keyward/keyward/verifier"
	"github.com/keyward/keyward/verifier/verifiertest"
)

type config struct {
	mode     string
	target   string
	keyFile  string
	keys     int
	hot      int
	conns    int
	duration time.Duration
	warmup   time.Duration
	requests int
	rounds   int
	dir      string
	profile  string
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kwload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("kwload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.mode, "mode", "verify", "verify (POST /v1/keys/verify) or forward-auth (GET /v1/auth)")
	fs.StringVar(&c.target, "url", "", "a running Keyward to load (loopback only); default: one started in this process")
	fs.StringVar(&c.keyFile, "key-file", "", "with --url: a file of valid secrets, one a line")
	fs.IntVar(&c.keys, "keys", 10_000, "keys seeded into the in-process server's database")
	fs.IntVar(&c.hot, "hot", 1000, "distinct keys the requests cycle through")
	fs.IntVar(&c.conns, "conns", 16, "concurrent keep-alive connections")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured time per run")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured time before each run")
	fs.IntVar(&c.requests, "requests", 5_000_000, "at most this many measured requests per run")
	fs.IntVar(&c.rounds, "rounds", 1, "baseline/Keyward pairs to run; the median ratio is reported")
	fs.StringVar(&c.dir, "dir", "", "where seeded databases are kept (default: the system's temporary folder)")
	fs.StringVar(&c.profile, "cpuprofile", "", "write a CPU profile of the Keyward runs (whole process) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.mode != "verify" && c.mode != "forward-auth" {
		return fmt.Errorf("--mode must be verify or forward-auth")
	}
	if c.conns < 1 || c.conns > 1024 || c.hot < 1 || c.rounds < 1 || c.rounds > 100 || c.requests < 1 ||
		c.duration <= 0 || c.duration > 10*time.Minute || c.warmup < 0 || c.warmup > time.Minute {
		return fmt.Errorf("out-of-range flags: conns 1..1024, hot ≥ 1, rounds 1..100, requests ≥ 1, duration ≤ 10m, warmup ≤ 1m")
	}

	var target string
	var secrets []string
	if c.target != "" {
		u, err := url.Parse(c.target)
		if err != nil || u.Scheme != "http" || !loopback(u.Hostname()) {
			return fmt.Errorf("--url must be http:// on a loopback address")
		}
		target = u.Host
		if secrets, err = readSecrets(c.keyFile); err != nil {
			return err
		}
		c.hot = min(c.hot, len(secrets))
	} else {
		if c.hot > c.keys {
			c.hot = c.keys
		}
		fmt.Fprintf(stderr, "kwload: opening a database of %d keys (seeded on first use, then kept)\n", c.keys)
		srv, err := startKeyward(ctx, c.dir, c.keys)
		if err != nil {
			return err
		}
		defer srv.close()
		target = srv.addr
		secrets = make([]string, c.hot)
		for i := range secrets {
			secrets[i] = verifiertest.Secret(i)
		}
	}
	secrets = secrets[:c.hot]
	base, err := startBaseline(c.mode)
	if err != nil {
		return err
	}
	defer base.Close()

	reqs := buildRequests(c.mode, secrets)
	fmt.Fprintf(stdout, "kwload: mode %s, %d connections, %d keys cycled, %v per run (+%v warm-up), %d rounds, GOMAXPROCS %d\n",
		c.mode, c.conns, len(secrets), c.duration, c.warmup, c.rounds, runtime.GOMAXPROCS(0))
	fmt.Fprintf(stdout, "%-6s %-9s %12s %10s %10s %8s %8s\n", "round", "target", "requests/s", "p50", "p99", "errors", "ratio")
	var ratios []float64
	failed := false
	var prof *os.File
	if c.profile != "" {
		if prof, err = os.Create(c.profile); err != nil {
			return err
		}
		defer prof.Close()
	}
	for round := 1; round <= c.rounds; round++ {
		b := load(base.Addr().String(), reqs, c, false)
		if prof != nil {
			if err := pprof.StartCPUProfile(prof); err != nil {
				return err
			}
		}
		k := load(target, reqs, c, c.mode == "verify")
		if prof != nil {
			pprof.StopCPUProfile()
			prof = nil // one run is enough
		}
		ratio := k.rate() / b.rate()
		ratios = append(ratios, ratio)
		for _, r := range []struct {
			name string
			res  result
			ext  string
		}{{"baseline", b, ""}, {"keyward", k, fmt.Sprintf("%.3f", ratio)}} {
			fmt.Fprintf(stdout, "%-6d %-9s %12.0f %10s %10s %8d %8s\n", round, r.name, r.res.rate(),
				r.res.quantile(0.50), r.res.quantile(0.99), r.res.errors, r.ext)
			if r.res.errors > 0 {
				failed = true
				fmt.Fprintf(stderr, "kwload: %s: %d errors, first: %s\n", r.name, r.res.errors, r.res.firstErr)
			}
		}
	}
	slices.Sort(ratios)
	fmt.Fprintf(stdout, "median ratio keyward/baseline: %.3f\n", ratios[len(ratios)/2])
	if failed {
		return errors.New("some requests failed")
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func readSecrets(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("--url needs --key-file with valid secrets")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Fields(string(b)) {
		if keyward.ParseSecret(l) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no well-formed secret", path)
	}
	return out, nil
}

// keywardServer is Keyward wired as cmd/keyward's Main wires it (which,
// being in package main, cannot be imported): store, usage recorder with
// spike detection, verification cache, service, JSON API and http.Server.
type keywardServer struct {
	addr  string
	srv   *http.Server
	rec   *usage.Recorder
	store interface{ Close() error }
}

func startKeyward(ctx context.Context, dir string, n int) (*keywardServer, error) {
	db, _, err := verifiertest.Open(ctx, dir, n)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var svc *keyward.Service
	rec := usage.New(db, log, usage.DefaultInterval,
		usage.WithSpikes(usage.DefaultSpikeConfig, func(ctx context.Context, s []keyward.UsageSpike) error {
			return svc.RecordUsageSpikes(ctx, s)
		}))
	cache := verifier.New(db, verifier.Options{})
	svc = keyward.NewService(db, verifiertest.Hasher(), keyward.Options{
		OnUse: rec.Used, OnVerify: rec.Count, Resolver: cache, OnChange: cache.Invalidate,
	})
	handler := api.New(svc, api.Options{Logger: log, Metrics: api.NewMetrics(), VerifyFailureLimit: 100})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		rec.Close(ctx)
		db.Close()
		return nil, err
	}
	s := &keywardServer{addr: ln.Addr().String(), rec: rec, store: db,
		srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *keywardServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
	s.rec.Close(ctx)
	s.store.Close()
}

// baselineBody is the baseline's fixed answer, about the size of Keyward's.
var baselineBody = []byte(`{"valid":true,"code":"VALID","key":{"id":"key_0000000000000000000000","tenant_id":"ten_0000000000000000000000","name":"bench key","owner_id":"usr_0000000000000000000000","type":"system","role":"admin","scopes":[],"meta":{},"expires_at":null}}` + "\n")

// startBaseline serves the floor: what any Go HTTP service does to answer
// such a request, and nothing more.
func startBaseline(mode string) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var h http.HandlerFunc
	if mode == "verify" {
		h = func(w http.ResponseWriter, r *http.Request) {
			var in struct {
				Key string `json:"key"`
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
			if err != nil || json.Unmarshal(body, &in) != nil || in.Key == "" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(baselineBody)
		}
	} else {
		h = func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("X-Keyward-Key-Id", "key_0000000000000000000000")
			w.WriteHeader(http.StatusOK)
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return ln, nil
}

// buildRequests renders each key's request once; the generator only writes bytes.
func buildRequests(mode string, secrets []string) [][]byte {
	out := make([][]byte, len(secrets))
	for i, s := range secrets {
		if mode == "verify" {
			body := `{"key":"` + s + `"}`
			out[i] = []byte("POST /v1/keys/verify HTTP/1.1\r\nHost: kwload\r\nContent-Type: application/json\r\n" +
				"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
		} else {
			out[i] = []byte("GET /v1/auth HTTP/1.1\r\nHost: kwload\r\nAuthorization: Bearer " + s + "\r\n\r\n")
		}
	}
	return out
}

type result struct {
	requests int64
	errors   int64
	firstErr string
	elapsed  time.Duration
	lat      []time.Duration // sorted
}

func (r result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

func (r result) quantile(q float64) string {
	if len(r.lat) == 0 {
		return "-"
	}
	d := r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))]
	return d.Round(time.Microsecond).String()
}

// load runs the closed-loop generator against addr: c.conns connections,
// a warm-up, then a measured run bounded by c.duration and c.requests.
func load(addr string, reqs [][]byte, c config, wantValid bool) result {
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		budget    atomic.Int64 // measured requests left
		errs      atomic.Int64
		errOnce   sync.Once
		firstErr  string
		wg        sync.WaitGroup
	)
	budget.Store(int64(c.requests))
	fail := func(err error) {
		errs.Add(1)
		errOnce.Do(func() { firstErr = err.Error() })
	}
	lats := make([][]time.Duration, c.conns)
	perConn := c.requests/c.conns + 1
	for i := range c.conns {
		wg.Go(func() {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				fail(err)
				return
			}
			defer conn.Close()
			br := bufio.NewReaderSize(conn, 16<<10)
			lat := make([]time.Duration, 0, min(perConn, 1<<20))
			for j := i; !stop.Load(); j++ {
				req := reqs[j%len(reqs)]
				m := measuring.Load()
				if m && budget.Add(-1) < 0 {
					break
				}
				start := time.Now()
				conn.SetDeadline(start.Add(10 * time.Second))
				if _, err := conn.Write(req); err != nil {
					fail(err)
					return
				}
				status, body, err := readResponse(br)
				d := time.Since(start)
				if err != nil {
					fail(err)
					return
				}
				if status != http.StatusOK || wantValid && !bytes.Contains(body, []byte(`"valid":true`)) {
					if m {
						fail(fmt.Errorf("status %d: %.200s", status, body))
					}
					continue
				}
				if m {
					lat = append(lat, d)
				}
			}
			lats[i] = lat
		})
	}
	time.Sleep(c.warmup) // the warm-up is a fixed span of load, not a wait for state
	measuring.Store(true)
	start := time.Now()
	deadline := time.NewTimer(c.duration)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-deadline.C:
	case <-done: // the request budget ran out first, or every connection failed
	}
	stop.Store(true)
	elapsed := time.Since(start)
	<-done
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	return result{requests: int64(len(all)), errors: errs.Load(), firstErr: firstErr, elapsed: elapsed, lat: all}
}

// readResponse reads one HTTP/1.1 response: status, headers, and a body of
// Content-Length bytes or chunked. The body slice is valid until the next read.
func readResponse(br *bufio.Reader) (int, []byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := 0, false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, nil, fmt.Errorf("bad Content-Length %q", value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	if chunked {
		var body []byte
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return 0, nil, err
			}
			n, err := strconv.ParseInt(string(bytes.TrimRight(line, "\r\n")), 16, 32)
			if err != nil {
				return 0, nil, fmt.Errorf("bad chunk size %q", line)
			}
			chunk := make([]byte, n+2)
			if _, err := io.ReadFull(br, chunk); err != nil {
				return 0, nil, err
			}
			if n == 0 {
				return status, body, nil
			}
			body = append(body, chunk[:n]...)
		}
	}
	if length > br.Size() {
		body := make([]byte, length)
		_, err := io.ReadFull(br, body)
		return status, body, err
	}
	body, err := br.Peek(length)
	if err != nil {
		return 0, nil, err
	}
	br.Discard(length)
	return status, body, nil
}

func asciiEqualFold(b []byte, s string) bool { return bytes.EqualFold(b, []byte(s)) }
