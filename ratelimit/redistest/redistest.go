// Package redistest gives tests a real Redis: KEYWARD_TEST_REDIS_URL, else
// the local server on 127.0.0.1:6379 if it answers. Without one a test
// skips, or fails under KEYWARD_TEST_REQUIRE=1.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is the server tried when KEYWARD_TEST_REDIS_URL is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

var (
	once sync.Once
	url  string // "" when there is none
	why  string // why there is none
)

// URL is the test Redis's URL; without one it skips t, or fails it under
// KEYWARD_TEST_REQUIRE=1.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		u, from := os.Getenv("KEYWARD_TEST_REDIS_URL"), "KEYWARD_TEST_REDIS_URL"
		if u == "" {
			u, from = DefaultURL, DefaultURL
		}
		o, err := redis.ParseURL(u)
		if err != nil {
			why = from + ": " + err.Error()
			return
		}
		c := redis.NewClient(o)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			why = "no Redis (set KEYWARD_TEST_REDIS_URL): " + from + " does not answer: " + err.Error()
			return
		}
		url = u
	})
	if url == "" {
		if os.Getenv("KEYWARD_TEST_REQUIRE") == "1" {
			t.Fatalf("KEYWARD_TEST_REQUIRE=1: %s", why)
		}
		t.Skip(why)
	}
	return url
}

// Prefix is a key prefix of t's own on the test Redis; the keys under it,
// and no others, are deleted when t ends.
func Prefix(t testing.TB) string {
	t.Helper()
	u := URL(t)
	b := make([]byte, 8)
	rand.Read(b)
	prefix := "keyward-test:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		o, err := redis.ParseURL(u)
		if err != nil {
			t.Error(err)
			return
		}
		c := redis.NewClient(o)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var keys []string
		it := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		if err := it.Err(); err != nil {
			t.Errorf("redistest: scan the test's keys: %v", err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("redistest: delete the test's keys: %v", err)
			}
		}
	})
	return prefix
}
