package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
)

// Channel is where the database announces committed changes that can alter
// a verification answer (migration 00003_notify: triggers on keys and
// tenants, so that no code path can forget to announce one).
const Channel = "keyward_changes"

// ListenerName is the application_name of the listening connection, so that
// operators (and the fault tests) can find it in pg_stat_activity.
const ListenerName = "keyward-listener"

// ParseChange reads a notification's payload: "k:" and comma-separated hex
// digests, or "t:" and a tenant ID.
func ParseChange(payload string) (keyward.Change, error) {
	kind, rest, ok := strings.Cut(payload, ":")
	if !ok || rest == "" {
		return keyward.Change{}, fmt.Errorf("postgres: bad change payload %q", payload)
	}
	switch kind {
	case "p":
		return keyward.Change{}, nil // a listener's probe of its own connection: nothing changed
	case "t":
		return keyward.Change{TenantID: rest}, nil
	case "k":
		var ch keyward.Change
		for h := range strings.SplitSeq(rest, ",") {
			d, err := hex.DecodeString(h)
			if err != nil || len(d) != 32 {
				return keyward.Change{}, fmt.Errorf("postgres: bad digest %q in a change payload", h)
			}
			ch.KeyHashes = append(ch.KeyHashes, d)
		}
		return ch, nil
	}
	return keyward.Change{}, fmt.Errorf("postgres: bad change payload %q", payload)
}

// Listening is what a node does with the changes other nodes commit: a
// verification cache (verifier.Cache) satisfies it.
type Listening interface {
	// Invalidate drops what a committed change made stale.
	Invalidate(keyward.Change)
	// Suspend is called when changes may go unheard (the listening
	// connection is lost, or not yet up): stop answering from memory.
	Suspend()
	// Resume is called once listening again: changes committed from now
	// on will be heard, those before may have been missed.
	Resume()
}

// ListenOptions tune Listen; zero values get the defaults.
type ListenOptions struct {
	Logger *slog.Logger
	// Ping is how long the connection may stay silent before it is asked to
	// answer: a connection lost without a word (a dead network path) is
	// found within Ping plus PingTimeout. Default 2s.
	Ping time.Duration
	// PingTimeout bounds that question. Default 2s.
	PingTimeout time.Duration
	// RetryMax caps the wait between attempts to reconnect, which starts
	// at 50ms and doubles. Default 2s.
	RetryMax time.Duration
	// Connected, when set, is told each time listening (re)starts; for tests.
	Connected func()
}

// Listen hears the changes that any node commits, on a connection of its
// own, and hands them to l until ctx ends. It fails closed: l is suspended
// first, resumed only once LISTEN is in place, suspended again the moment
// the connection is lost, and Listen reconnects by itself.
func (db *DB) Listen(ctx context.Context, l Listening, opts ListenOptions) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Ping <= 0 {
		opts.Ping = 2 * time.Second
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 2 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 2 * time.Second
	}
	l.Suspend()
	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := db.listenOnce(ctx, l, opts)
		l.Suspend()
		if time.Since(start) > stableListening {
			wait = 50 * time.Millisecond // it had been working: start the back-off afresh
		}
		if ctx.Err() != nil {
			return
		}
		opts.Logger.Warn("cache invalidation: listening connection lost; answering from the database until it is back",
			"err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, opts.RetryMax)
	}
}

// stableListening is how long a listening connection must have lasted for
// the next reconnection to start its back-off afresh: a connection that dies
// right after LISTEN does not make the node reconnect, and flap its cache,
// every 50 ms.
const stableListening = 30 * time.Second

// listenOnce connects, listens, proves that notifications arrive, and hands
// changes over until the connection fails or ctx ends.
func (db *DB) listenOnce(ctx context.Context, l Listening, opts ListenOptions) error {
	cfg := db.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = ListenerName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	// LISTEN can succeed where nothing will ever be delivered (a pooler in
	// transaction mode between the node and PostgreSQL): a probe sent on the
	// channel must come back before the cache relies on it.
	if err := probe(ctx, conn, opts.PingTimeout); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	// From here on every committed change is heard: what memory holds from
	// before may be stale, and Resume drops it.
	l.Resume()
	opts.Logger.Info("cache invalidation: listening for changes", "channel", Channel)
	if opts.Connected != nil {
		opts.Connected()
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, opts.Ping)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil && strings.HasPrefix(n.Payload, "p:"):
			// A probe: ours, or another node's; nothing changed.
		case err == nil:
			ch, perr := ParseChange(n.Payload)
			if perr != nil {
				// Not ours, or damaged: drop everything rather than guess.
				opts.Logger.Error("cache invalidation: unreadable change; dropping the whole cache", "err", perr)
				l.Suspend()
				l.Resume()
				continue
			}
			l.Invalidate(ch)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// Silence: make sure the connection still answers.
			pctx, cancel := context.WithTimeout(ctx, opts.PingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return err
		}
	}
}

// probe sends a notification on the channel and waits for it to come back on
// conn. Notifications of changes that arrive meanwhile are not lost to the
// cache: the cache is still suspended, and resumes from empty.
func probe(ctx context.Context, conn *pgx.Conn, timeout time.Duration) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	payload := "p:" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, payload); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		n, err := conn.WaitForNotification(pctx)
		if err != nil {
			return fmt.Errorf("no notification came back within %v: %w", timeout, err)
		}
		if n.Payload == payload {
			return nil
		}
	}
}
