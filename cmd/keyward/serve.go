package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/api"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/usage"
	"github.com/keyward/keyward/verifier"
)

// Main is one running server: its store, usage recorder, background work and
// HTTP listener. End-to-end tests use it the way the command does.
type Main struct {
	Addr       string // listen address; ":0" picks a free port
	DB         string // sqlite:PATH (postgres:// comes with the PostgreSQL store)
	Redis      string // redis://… shares per-key rate limits across nodes; "" limits on each node alone
	PepperFile string
	Logger     *slog.Logger
	// TrustedProxies lists the proxies (comma-separated CIDRs or addresses)
	// whose X-Forwarded-For is believed; "" trusts nobody.
	TrustedProxies string

	// Tuning, mostly for tests; zero values get production defaults.
	Now                func() time.Time
	PasswordParams     *keyward.PasswordParams
	UsageInterval      time.Duration
	SweepInterval      time.Duration
	VerifyFailureLimit int
	ShutdownTimeout    time.Duration

	// Set by Run.
	URL      string
	Service  *keyward.Service
	Cache    *verifier.Cache
	store    keyward.Store
	usage    *usage.Recorder
	limiter  *ratelimit.Redis // nil without Redis
	server   *http.Server
	listener net.Listener
	served   chan error
	stopBG   context.CancelFunc
	bgDone   chan struct{}
	// indexDone: the search index's build at start is over (SQLite).
	indexDone chan struct{}
	// listenDone is closed when the change listener (PostgreSQL) has stopped.
	listenDone chan struct{}
	leader     *leader // owned by the sweep goroutine; Leading reads its flag
	closed     sync.Once
	closeErr   error
}

// Run opens the store, starts background work and begins serving; it returns
// once the listener is open.
func (m *Main) Run(ctx context.Context) error {
	if m.Logger == nil {
		m.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	driver, addr, err := parseDB(m.DB)
	if err != nil {
		return err
	}
	trusted, err := parseTrustedProxies(m.TrustedProxies)
	if err != nil {
		return err
	}
	pepper, err := loadPepper(m.PepperFile, driver, addr)
	if err != nil {
		return err
	}
	hasher, err := keyward.NewHasher(pepper)
	if err != nil {
		return err
	}
	if m.store, err = openStore(ctx, driver, addr); err != nil {
		return err
	}
	switch db := m.store.(type) { // they settle large revocations in the background
	case *sqlite.DB:
		db.SetLogger(m.Logger)
	case *postgres.DB:
		db.SetLogger(m.Logger)
	}
	var limiter keyward.RateLimiter // nil: the service limits on this node
	if m.Redis != "" {
		if m.limiter, err = ratelimit.NewRedis(m.Redis, ratelimit.RedisOptions{Logger: m.Logger}); err != nil {
			m.store.Close()
			return fmt.Errorf("--redis: %w", err)
		}
		limiter = m.limiter
	}
	now := m.Now
	if now == nil {
		now = time.Now
	}
	// The recorder reports spikes through the service, which needs the
	// recorder's hooks: spikes go through this variable, set just below.
	var svc *keyward.Service
	m.usage = usage.New(m.store, m.Logger, m.UsageInterval, usage.WithClock(now),
		usage.WithSpikes(usage.DefaultSpikeConfig, func(ctx context.Context, s []keyward.UsageSpike) error {
			return svc.RecordUsageSpikes(ctx, s)
		}))
	m.Cache = verifier.New(m.store, verifier.Options{})
	if _, ok := m.store.(*postgres.DB); ok {
		m.Cache.Suspend() // until the listener hears every change (Listen resumes it)
	}
	svc = keyward.NewService(m.store, hasher, keyward.Options{
		Now: now, PasswordParams: m.PasswordParams, OnUse: m.usage.Used, OnVerify: m.usage.Count,
		Resolver: m.Cache, OnChange: m.Cache.Invalidate, RateLimiter: limiter,
	})
	m.Service = svc
	metrics := api.NewMetrics()
	metrics.Register(m.Cache.Collectors()...)
	srv := api.New(m.Service, api.Options{Logger: m.Logger, Metrics: metrics, VerifyFailureLimit: m.VerifyFailureLimit,
		TrustedProxies: trusted})

	if m.listener, err = net.Listen("tcp", m.Addr); err != nil {
		m.usage.Close(ctx)
		m.store.Close()
		if m.limiter != nil {
			m.limiter.Close()
		}
		return err
	}
	m.URL = "http://" + m.listener.Addr().String()
	m.server = &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn)}
	m.served = make(chan error, 1)
	go func() { m.served <- m.server.Serve(m.listener) }()
	bg, cancel := context.WithCancel(context.Background())
	m.stopBG, m.bgDone = cancel, make(chan struct{})
	m.leader = &leader{log: m.Logger}
	m.listenDone = make(chan struct{})
	if db, ok := m.store.(*postgres.DB); ok {
		m.leader.db = db
		// Other nodes' changes reach this node's cache through the database;
		// until the listener is up (and whenever it is down) the cache is
		// suspended and every verification reads the database.
		go func() {
			defer close(m.listenDone)
			db.Listen(bg, m.Cache, postgres.ListenOptions{Logger: m.Logger})
		}()
	} else {
		close(m.listenDone) // one node: every change is made here, and told to the cache directly
	}
	go m.sweep(bg)
	m.indexDone = make(chan struct{})
	go func() {
		defer close(m.indexDone)
		db, ok := m.store.(*sqlite.DB)
		if !ok {
			return
		}
		// The first search of a tenant would otherwise wait for its index.
		start := time.Now()
		tenants, keys, err := db.IndexSearch(bg)
		switch {
		case err != nil && bg.Err() == nil:
			m.Logger.Warn("search index not built; searches build it as they come", "err", err)
		case err == nil:
			m.Logger.Info("search index built", "tenants", tenants, "keys", keys,
				"seconds", time.Since(start).Round(time.Millisecond).Seconds())
		}
	}()
	m.Logger.Info("keyward serving", "url", m.URL, "db", driver, "version", Version())
	return nil
}

// sweep records key.expired events as keys run out.
func (m *Main) sweep(ctx context.Context) {
	defer close(m.bgDone)
	every := m.SweepInterval
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	l := m.leader
	defer l.release()
	for {
		for l.leading(ctx) {
			n, err := m.Service.SweepExpired(ctx, 1000)
			if err != nil && ctx.Err() == nil {
				m.Logger.Error("expiry sweep failed", "err", err)
			}
			if n < 1000 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close stops accepting requests, finishes those in flight, flushes usage
// data, and closes the store. Nothing acknowledged is lost.
func (m *Main) Close() error {
	m.closed.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *Main) close() error {
	timeout := m.ShutdownTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	if m.server != nil {
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
		}
		if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if m.stopBG != nil {
		m.stopBG()
		<-m.bgDone
		<-m.listenDone
		<-m.indexDone
	}
	if m.usage != nil {
		if err := m.usage.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush usage: %w", err))
		}
	}
	if m.store != nil {
		if err := m.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if m.limiter != nil {
		if err := m.limiter.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close redis: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Leading reports whether this node runs the background work (always on
// SQLite; the advisory lock's holder on PostgreSQL), as of its last check.
func (m *Main) Leading() bool { return m.leader != nil && m.leader.now.Load() }

// Wait blocks until the server stops on its own (a listener failure).
func (m *Main) Wait() <-chan error { return m.served }

func openStore(ctx context.Context, driver, addr string) (keyward.Store, error) {
	switch driver {
	case "sqlite":
		return sqlite.Open(ctx, addr)
	case "postgres":
		return postgres.Open(ctx, addr)
	}
	return nil, fmt.Errorf("the %s store is not available in this build yet; use sqlite:PATH", driver)
}

// parseTrustedProxies reads --trusted-proxies: CIDRs or single addresses,
// comma-separated ("127.0.0.1,10.0.0.0/8").
func parseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range strings.Split(list, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("--trusted-proxies: %q is neither an IP address nor a CIDR (like 10.0.0.0/8)", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	m := &Main{}
	fs.StringVar(&m.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&m.DB, "db", DefaultDB, "database: sqlite:PATH or postgres://…")
	fs.StringVar(&m.Redis, "redis", "", "redis://… shares per-key rate limits across nodes; without it each node limits on its own")
	fs.StringVar(&m.PepperFile, "pepper-file", "", "file holding the server pepper (default: KEYWARD_PEPPER, else generated in the SQLite data folder)")
	fs.IntVar(&m.VerifyFailureLimit, "verify-failure-limit", 100, "failed verifications per client address per minute before 429")
	fs.StringVar(&m.TrustedProxies, "trusted-proxies", "", "proxies (comma-separated CIDRs or addresses) whose X-Forwarded-For is believed for the client address; default nobody")
	fs.DurationVar(&m.UsageInterval, "usage-interval", usage.DefaultInterval, "how often last-used times are written to the database (keep it at most 10s)")
	logFormat := fs.String("log-format", "json", "log format: json or text")
	logLevel := fs.String("log-level", "info", "least level logged: debug (every verification too), info, warn or error")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if err := envDefaults(fs); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(stderr, opts)
	if *logFormat == "text" {
		h = slog.NewTextHandler(stderr, opts)
	}
	m.Logger = slog.New(h)
	if err := m.Run(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		m.Logger.Info("stopping: finishing requests in flight and flushing usage")
	case err := <-m.served:
		m.served <- err
		m.Logger.Error("server stopped", "err", err)
	}
	if err := m.Close(); err != nil {
		return err
	}
	m.Logger.Info("stopped")
	return nil
}
