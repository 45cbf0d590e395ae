package verifier_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verifier"
)

// The stress tests below prove the cache's central promise: once a change
// made through the service has returned, every verification that starts
// afterwards answers the change, even when fills that read the old row are
// still in flight. Verifiers run in a loop while a driver makes changes;
// the store holds read transactions open for a random while right after
// reading the key, so that fills straddle the changes.

const verifiers = 4

// step is one change and the code every verification that starts after it
// returned must answer (until the next change starts).
type step struct {
	name string
	do   func() error
	want string
}

// mode is how the cache is driven during a stress run.
type mode struct {
	name string
	opts verifier.Options
	// purge empties the cache at random moments, so that hits, fills and
	// installs all race the changes.
	purge bool
}

var modes = []mode{
	// Every verification misses and fills: the most fills in flight.
	{name: "fills", opts: verifier.Options{MaxAge: time.Nanosecond, NegativeTTL: time.Nanosecond}},
	// Hits from memory, with fills after each invalidation and each purge.
	{name: "mixed", opts: verifier.Options{}, purge: true},
}

// stressFixture is a fixture on real time whose store delays reads.
func stressFixture(t *testing.T, m mode) *fixture {
	f := newFixtureOn(t, m.opts, time.Now)
	f.store.maxDelay.Store(int64(200 * time.Microsecond))
	return f
}

// hammer verifies secrets in a loop from several goroutines while steps run
// one after another, and fails the test for any answer that an earlier state
// gave. phase is even (2i) while the state after step i-1 (initial for i=0)
// is in force, odd (2i+1) while step i runs. A verification that starts in
// phase p and ends in phase q may answer the code of any state from p/2 to
// (q+1)/2: the states in force while it ran. So after a change has returned,
// only the change's code (or a later one's) passes.
//
// Steps after the first minSteps are skipped once budget has passed, so that
// a busy machine makes the test shorter, not longer. hammer returns how many
// steps ran and how many verifications it checked.
func hammer(t *testing.T, f *fixture, m mode, secrets []string, initial string, steps []step,
	minSteps int, budget time.Duration) (ran int, verified int64) {
	t.Helper()
	ctx := context.Background()
	want := []string{initial}
	for _, s := range steps {
		want = append(want, s.want)
	}
	var (
		phase    atomic.Int64
		done     atomic.Bool
		failures atomic.Int64
		perPhase = make([]atomic.Int64, 2*len(steps)+1) // verifications that started and ended in a phase
		wg       sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 5 {
			t.Errorf(format, args...)
		}
	}
	for w := range verifiers {
		wg.Go(func() {
			for i := w; !done.Load(); i++ {
				secret := secrets[i%len(secrets)]
				p := phase.Load()
				res, err := f.svc.Verify(ctx, keyward.VerifyInput{Key: secret})
				q := phase.Load()
				if err != nil {
					fail("Verify: %v", err)
					return
				}
				ok := false
				for s := p / 2; s <= (q+1)/2; s++ {
					ok = ok || res.Code == want[s]
				}
				if !ok {
					what := "after " + steps[max(p/2-1, 0)].name + " returned"
					if p%2 == 1 {
						what = "during " + steps[p/2].name
					} else if p == 0 {
						what = "before any change"
					}
					fail("a verification that started %s (phase %d, ended in %d) answered %s, want %v",
						what, p, q, res.Code, want[p/2:(q+1)/2+1])
				}
				if p == q {
					perPhase[p].Add(1)
				}
				jitter(50 * time.Microsecond) // leave the driver some CPU, and vary the timing
			}
		})
	}
	if m.purge {
		wg.Go(func() {
			for !done.Load() {
				jitter(300 * time.Microsecond)
				f.cache.Purge()
			}
		})
	}
	// waitPhase lets verifications run within phase p before moving on, so
	// that every state is seen; it polls, with a deadline.
	waitPhase := func(p int64, n int64) {
		deadline := time.Now().Add(10 * time.Second)
		for perPhase[p].Load() < n && failures.Load() == 0 {
			if time.Now().After(deadline) {
				fail("no verification completed in phase %d within 10s", p)
				return
			}
			time.Sleep(20 * time.Microsecond) // a polling interval, not a wait for state
		}
	}
	start := time.Now()
	for i, s := range steps {
		if i >= minSteps && time.Since(start) > budget {
			break
		}
		ran = i + 1
		waitPhase(int64(2*i), 1+rand.Int64N(4))
		jitter(200 * time.Microsecond) // land the change at a random point of the verifiers' loops
		phase.Store(int64(2*i + 1))
		if err := s.do(); err != nil {
			fail("%s: %v", s.name, err)
			break
		}
		phase.Store(int64(2*i + 2))
		if failures.Load() > 0 {
			break
		}
	}
	waitPhase(int64(2*ran), 8)
	done.Store(true)
	wg.Wait()
	for i := range perPhase {
		verified += perPhase[i].Load()
	}
	return ran, verified
}

// checkExercised makes sure a run went through both paths of the cache it
// was meant to exercise.
func checkExercised(t *testing.T, f *fixture, m mode) {
	t.Helper()
	s := f.cache.Stats()
	if s.Misses == 0 || m.purge && s.Hits == 0 {
		t.Errorf("stats %+v: the run did not exercise the cache as intended", s)
	}
}

// minRounds is how many changes a stress test makes however busy the machine.
const minRounds = 20

// rounds is how many keys each terminal-change stress test burns: every
// round is one key verified by all verifiers while it is changed.
func rounds() int {
	if testing.Short() {
		return 40
	}
	return 150
}

// A terminal change and what a key answers after it.
type terminal struct {
	name string
	want string
	do   func(f *fixture, p *keyward.Principal, k *keyward.Key) error
}

// Terminal changes: once revoked, deleted or rotated out, a key never
// answers VALID again, whatever fills were in flight.
func TestStressRevoke(t *testing.T) {
	ctx := context.Background()
	stressTerminal(t, rounds(), 4*time.Second, terminal{"revoke", keyward.CodeRevoked, func(f *fixture, p *keyward.Principal, k *keyward.Key) error {
		_, err := f.svc.RevokeKey(ctx, p, k.ID, nil)
		return err
	}})
	stressTerminal(t, rounds()/3, 2*time.Second, terminal{"bulk revoke", keyward.CodeRevoked, func(f *fixture, p *keyward.Principal, k *keyward.Key) error {
		_, err := f.svc.BulkRevoke(ctx, p, keyward.BulkRevokeInput{IDs: []string{k.ID}})
		return err
	}})
}

func TestStressDeleteAndRotate(t *testing.T) {
	ctx := context.Background()
	stressTerminal(t, rounds()/2, 3*time.Second, terminal{"delete", keyward.CodeNotFound, func(f *fixture, p *keyward.Principal, k *keyward.Key) error {
		return f.svc.DeleteKey(ctx, p, k.ID)
	}})
	stressTerminal(t, rounds()/2, 3*time.Second, terminal{"rotate", keyward.CodeExpired, func(f *fixture, p *keyward.Principal, k *keyward.Key) error {
		grace := time.Duration(0)
		_, _, err := f.svc.RotateKey(ctx, p, k.ID, &grace)
		return err
	}})
}

// stressTerminal runs a terminal change on up to n keys, one at a time, in
// each mode; after minRounds keys, it stops once budget has passed.
func stressTerminal(t *testing.T, n int, budget time.Duration, c terminal) {
	for _, m := range modes {
		t.Run(m.name+"/"+c.name, func(t *testing.T) {
			f := stressFixture(t, m)
			p := f.p(t)
			var verified int64
			start, i := time.Now(), 0
			for ; i < n && (i < minRounds || time.Since(start) < budget); i++ {
				k, secret := f.newKey(t, keyward.KeyInput{Name: fmt.Sprintf("k%d", i), Role: keyward.KeyRoleAdmin})
				_, v := hammer(t, f, m, []string{secret}, keyward.CodeValid, []step{
					{name: c.name, want: c.want, do: func() error { return c.do(f, p, k) }},
				}, 1, 0)
				verified += v
				if t.Failed() {
					return
				}
			}
			checkExercised(t, f, m)
			t.Logf("%d keys, %d verifications checked; cache %+v", i, verified, f.cache.Stats())
		})
	}
}

// Deactivation and reactivation, many times over on one key: after each
// returns, only its answer passes.
func TestStressDeactivate(t *testing.T) {
	ctx := context.Background()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f := stressFixture(t, m)
			k, secret := f.newKey(t, keyward.KeyInput{Role: keyward.KeyRoleAdmin})
			p := f.p(t)
			var steps []step
			for range rounds() {
				steps = append(steps,
					step{name: "deactivate", want: keyward.CodeInactive, do: func() error {
						_, err := f.svc.DeactivateKey(ctx, p, k.ID)
						return err
					}},
					step{name: "reactivate", want: keyward.CodeValid, do: func() error {
						_, err := f.svc.ReactivateKey(ctx, p, k.ID)
						return err
					}})
			}
			ran, n := hammer(t, f, m, []string{secret}, keyward.CodeValid, steps, 2*minRounds, 6*time.Second)
			checkExercised(t, f, m)
			t.Logf("%d changes, %d verifications checked; cache %+v", ran, n, f.cache.Stats())
		})
	}
}

// The tenant switch, off and on many times, with several keys of the
// tenant verified at once: they all follow it.
func TestStressTenantSwitch(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f := stressFixture(t, m)
			var secrets []string
			for i := range 4 {
				_, s := f.newKey(t, keyward.KeyInput{Name: fmt.Sprintf("k%d", i)})
				secrets = append(secrets, s)
			}
			var steps []step
			for range rounds() {
				steps = append(steps,
					step{name: "switch off", want: keyward.CodeKeysDisabled, do: func() error { return f.setKeys(false) }},
					step{name: "switch on", want: keyward.CodeValid, do: func() error { return f.setKeys(true) }})
			}
			ran, n := hammer(t, f, m, secrets, keyward.CodeValid, steps, 2*minRounds, 6*time.Second)
			checkExercised(t, f, m)
			t.Logf("%d changes, %d verifications checked; cache %+v", ran, n, f.cache.Stats())
		})
	}
}

// setKeys is switchKeys for goroutines other than the test's.
func (f *fixture) setKeys(on bool) error {
	ctx := context.Background()
	p, err := f.svc.Authenticate(ctx, f.admin)
	if err != nil {
		return err
	}
	_, err = f.svc.UpdateSettings(ctx, p, keyward.SettingsPatch{APIKeysEnabled: &on})
	return err
}
