package main

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestLargeBulkRevocation revokes more keys than the SQLite store revokes
// row by row (1,000), through the running server: the revocation is a
// mark (revocation marks, docs/design.md) that the store settles after the
// answer. From the answer on, every key must verify REVOKED, read revoked
// and list revoked, and the audit trail must hold one key.revoked event a
// key, with a random ID; the log shows that a mark was settled.
func TestLargeBulkRevocation(t *testing.T) {
	srv := startServer(t, t.TempDir(), &recorder{}, serverOpts{})
	c := srv.c
	tn := srv.newTenant(t, "Bulk")
	c.settings(t, tn.Session, map[string]any{"max_keys_per_service_user": 1000})
	const perOwner, owners = 505, 2
	var keys []apiKey
	for o := range owners {
		sys := c.createUser(t, tn.Session, map[string]any{"email": tn.email(fmt.Sprint("svc", o)),
			"name": fmt.Sprint("Service ", o), "kind": "system"})
		for i := range perOwner {
			keys = append(keys, c.createKey(t, tn.AdminKey, map[string]any{"name": fmt.Sprintf("svc%d-%d", o, i),
				"owner_id": sys.ID}))
		}
	}
	sample := []apiKey{keys[0], keys[len(keys)/2], keys[len(keys)-1]}
	for _, k := range sample {
		c.wantVerify(t, k.Secret, "VALID", k.ID) // cached as valid
	}

	var br bulkAnswer
	c.must(t, 200, "POST", "/v1/keys/revoke", tn.Session, map[string]any{"type": "system", "reason": "leaked"}, &br)
	if br.Revoked != len(keys) || len(br.Failed) != 0 {
		t.Fatalf("revoke type system: %+v, want %d revoked", br, len(keys))
	}
	for _, k := range sample {
		c.wantVerify(t, k.Secret, "REVOKED", k.ID)
		g := c.getKey(t, tn.Session, k.ID)
		if g.Status != "revoked" || g.RevokedBy == nil || *g.RevokedBy != tn.AdminID ||
			g.RevokeReason == nil || *g.RevokeReason != "leaked" {
			t.Errorf("%s after the revocation: status %s, revoked by %v, reason %v", k.Name, g.Status, g.RevokedBy, g.RevokeReason)
		}
	}
	c.wantVerify(t, tn.AdminKey, "VALID", tn.AdminKeyID)
	if l := c.listKeys(t, tn.Session, url.Values{"status": {"revoked"}}); l.Total != len(keys) {
		t.Errorf("%d keys listed revoked, want %d", l.Total, len(keys))
	}
	if l := c.listKeys(t, tn.Session, url.Values{"status": {"active"}}); l.Total != 1 {
		t.Errorf("%d keys listed active, want 1 (the admin's)", l.Total)
	}

	events := c.events(t, tn.Session, url.Values{"action": {"key.revoked"}})
	if len(events) != len(keys) {
		t.Fatalf("%d key.revoked events, want %d", len(events), len(keys))
	}
	wellFormed := regexp.MustCompile(`^evt_[0-9A-Za-z]{22}$`)
	seen, seenID := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		if seen[e.Target.ID] {
			t.Errorf("two key.revoked events for %s", e.Target.ID)
		}
		seen[e.Target.ID] = true
		if !wellFormed.MatchString(e.ID) || seenID[e.ID] {
			t.Errorf("event ID %s: not evt_ and 22 base62 characters, or not unique", e.ID)
		}
		seenID[e.ID] = true
		if e.Actor.ID != tn.AdminID || e.Details["reason"] != "leaked" || e.Details["bulk"] != true {
			t.Errorf("event %s: actor %s, details %v", e.ID, e.Actor.ID, e.Details)
		}
	}
	log := srv.log.String()
	if strings.Contains(log, "settling revocation marks failed") {
		t.Errorf("the server logged a failed settling:\n%s", log)
	}
	if !strings.Contains(log, `"msg":"revocation mark settled","tenant":"`+tn.ID+`"`) {
		t.Errorf("the server did not log the settling of the tenant's mark:\n%s", log)
	}
}
