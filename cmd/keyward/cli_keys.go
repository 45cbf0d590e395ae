package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	kwclient "github.com/keyward/keyward/client"
)

var keysSubcommands = []string{"list", "get", "create", "update", "revoke", "deactivate", "reactivate", "rotate", "delete", "verify", "usage"}

// runKeys is `keyward keys …`.
func runKeys(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	sub, args, err := pickSub("keys", args, keysSubcommands, stderr)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return keysList(ctx, args, stdin, stdout, stderr)
	case "get":
		return keysGet(ctx, args, stdin, stdout, stderr)
	case "create":
		return keysCreate(ctx, args, stdin, stdout, stderr)
	case "update":
		return keysUpdate(ctx, args, stdin, stdout, stderr)
	case "revoke":
		return keysRevoke(ctx, args, stdin, stdout, stderr)
	case "deactivate", "reactivate":
		return keysToggle(ctx, sub, args, stdin, stdout, stderr)
	case "rotate":
		return keysRotate(ctx, args, stdin, stdout, stderr)
	case "delete":
		return keysDelete(ctx, args, stdin, stdout, stderr)
	case "verify":
		return keysVerify(ctx, args, stdin, stdout, stderr)
	case "usage":
		return keysUsage(ctx, args, stdin, stdout, stderr)
	}
	return errUsage
}

func keysList(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("keys list", "[--q TEXT] [--type user|system] [--status S] [--owner USER_ID] [--sort COL] [--page-size N] [--page-token T | --all] [--json]",
		stdin, stdout, stderr)
	var p kwclient.ListKeysParams
	c.fs.StringVar(&p.Q, "q", "", "search key name, key ID and owner (name or email)")
	c.fs.StringVar(&p.Type, "type", "", "user or system")
	c.fs.StringVar(&p.Status, "status", "", "active, inactive, revoked or expired")
	c.fs.StringVar(&p.OwnerID, "owner", "", "the owner's user ID")
	c.fs.StringVar(&p.Sort, "sort", "", "name, id, owner, type, role, status, created_at, updated_at, expires_at or last_used_at; -COL descends (default -created_at)")
	c.fs.IntVar(&p.PageSize, "page-size", 0, "keys per page, 1..200 (default 50)")
	c.fs.StringVar(&p.PageToken, "page-token", "", "the page to show, from the previous page")
	all := c.fs.Bool("all", false, "every page")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	var l *kwclient.KeyList
	if *all {
		l = &kwclient.KeyList{Keys: []kwclient.Key{}}
		for k, err := range api.AllKeys(ctx, p) {
			if err != nil {
				return apiError(err)
			}
			l.Keys = append(l.Keys, *k)
		}
		l.Total = len(l.Keys)
	} else if l, err = api.ListKeys(ctx, p); err != nil {
		return apiError(err)
	}
	if c.json {
		return c.printJSON(struct {
			Keys          []kwclient.Key `json:"keys"`
			NextPageToken *string        `json:"next_page_token"`
			Total         int            `json:"total"`
		}{l.Keys, tokenOrNull(l.NextPageToken), l.Total})
	}
	if len(l.Keys) == 0 {
		fmt.Fprintln(c.stdout, "No keys.")
		return nil
	}
	tw := c.table()
	fmt.Fprintln(tw, "NAME\tID\tOWNER\tTYPE\tROLE\tSTATUS\tCREATED\tEXPIRES\tLAST USED")
	for _, k := range l.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(k.Name), cell(k.ID), cell(ownerOf(k)), cell(k.Type), cell(k.Role),
			cell(k.Status), fmtTime(k.CreatedAt), fmtOptTime(k.ExpiresAt, "Never"), fmtOptTime(k.LastUsedAt, "Never"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if l.NextPageToken != "" {
		fmt.Fprintf(c.stdout, "\n%d of %d keys. Next page: --page-token %s (or --all)\n", len(l.Keys), l.Total, l.NextPageToken)
	}
	return nil
}

func ownerOf(k kwclient.Key) string {
	if k.OwnerName != "" {
		return k.OwnerName
	}
	if k.OwnerEmail != "" {
		return k.OwnerEmail
	}
	return k.OwnerID
}

func keysGet(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("keys get", "KEY_ID [--json]", stdin, stdout, stderr)
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	k, err := api.GetKey(ctx, pos[0])
	if err != nil {
		return apiError(err)
	}
	if c.json {
		return c.printJSON(k)
	}
	return printKey(c.stdout, k)
}

// printKey shows every field of a key, one per line.
func printKey(w io.Writer, k *kwclient.Key) error {
	tw := tabwriterFor(w)
	row := func(name, value string) { fmt.Fprintf(tw, "%s\t%s\n", name, value) }
	row("ID", cell(k.ID))
	row("Name", cell(k.Name))
	row("Description", cell(k.Description))
	owner := k.OwnerName
	if k.OwnerEmail != "" {
		owner += " <" + k.OwnerEmail + ">"
	}
	row("Owner", cell(strings.TrimSpace(owner+" "+k.OwnerID)))
	row("Type", cell(k.Type))
	row("Role", cell(k.Role))
	row("Scopes", cell(strings.Join(k.Scopes, ", ")))
	meta := "-"
	if len(k.Meta) > 0 {
		b, _ := json.Marshal(k.Meta)
		meta = clean(string(b))
	}
	row("Meta", meta)
	row("Status", cell(k.Status))
	row("Start", cell(k.Start))
	rl := "none"
	if k.RateLimit != nil {
		rl = fmt.Sprintf("%d per %s", k.RateLimit.Limit, time.Duration(k.RateLimit.WindowSeconds)*time.Second)
	}
	row("Rate limit", rl)
	row("Created", fmtTime(k.CreatedAt))
	row("Updated", fmtTime(k.UpdatedAt))
	row("Expires", fmtOptTime(k.ExpiresAt, "Never"))
	row("Last used", fmtOptTime(k.LastUsedAt, "Never"))
	if k.RevokedAt != nil {
		by, reason := "-", "-"
		if k.RevokedBy != nil {
			by = clean(*k.RevokedBy)
		}
		if k.RevokeReason != nil {
			reason = cell(*k.RevokeReason)
		}
		row("Revoked", fmtTime(*k.RevokedAt)+" by "+by)
		row("Reason", reason)
	}
	return tw.Flush()
}

// printSecret shows a new key and its secret, with the warning on stderr so
// it is seen even when stdout goes to a file.
func (c *cliCmd) printSecret(k *kwclient.CreatedKey) error {
	fmt.Fprintln(c.stderr, "The secret is shown only this once: store it now. Keyward keeps only a hash of it.")
	if c.json {
		return c.printJSON(k)
	}
	if err := printKey(c.stdout, &k.Key); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\nSecret  %s\n", k.Secret)
	return nil
}

// rateLimitFlag reads --rate-limit LIMIT/WINDOW (100/1m) or "none".
func parseRateLimit(s string) (*kwclient.RateLimit, error) {
	if s == "none" {
		return nil, nil
	}
	limit, window, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(limit)
	if !ok || err != nil || n < 1 {
		return nil, fmt.Errorf("--rate-limit %q: use LIMIT/WINDOW such as 100/1m, or none", s)
	}
	d, err := time.ParseDuration(window)
	if err != nil || d < time.Second || d%time.Second != 0 {
		return nil, fmt.Errorf("--rate-limit %q: the window must be whole seconds such as 1m or 30s", s)
	}
	return &kwclient.RateLimit{Limit: n, WindowSeconds: int(d / time.Second)}, nil
}

func keysCreate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("keys create", "--name NAME [--description D] [--owner USER_ID] [--role readonly|admin] [--scopes a,b] [--meta JSON] [--expires T] [--rate-limit N/W] [--json]",
		stdin, stdout, stderr)
	var in kwclient.CreateKeyRequest
	c.fs.StringVar(&in.Name, "name", "", "the key's name (required)")
	c.fs.StringVar(&in.Description, "description", "", "what the key is for")
	c.fs.StringVar(&in.OwnerID, "owner", "", "the owner's user ID (default: the caller)")
	c.fs.StringVar(&in.Role, "role", "", "readonly (default) or admin")
	scopes := c.fs.String("scopes", "", "comma-separated scopes")
	meta := c.fs.String("meta", "", `a JSON object kept with the key, such as {"team":"billing"}`)
	expires := c.fs.String("expires", "", "expiry: an RFC 3339 time, or from now (90d, 36h); default: the tenant's maximum, else never")
	rateLimit := c.fs.String("rate-limit", "", "verifications allowed per window, such as 100/1m")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	if in.Name == "" {
		return c.usageError("--name is required")
	}
	if *scopes != "" {
		in.Scopes = splitList(*scopes)
	}
	if *meta != "" {
		if err := json.Unmarshal([]byte(*meta), &in.Meta); err != nil || in.Meta == nil {
			return c.usageError("--meta must be a JSON object")
		}
	}
	if *expires != "" {
		t, err := parseExpiry(*expires, time.Now())
		if err != nil {
			return c.usageError(err.Error())
		}
		in.ExpiresAt = &t
	}
	if *rateLimit != "" {
		rl, err := parseRateLimit(*rateLimit)
		if err != nil {
			return c.usageError(err.Error())
		}
		in.RateLimit = rl
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	k, err := api.CreateKey(ctx, in)
	if err != nil {
		return apiError(err)
	}
	return c.printSecret(k)
}

func keysUpdate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("keys update", "KEY_ID [--name NAME] [--description D] [--rate-limit N/W|none] [--json]", stdin, stdout, stderr)
	name := c.fs.String("name", "", "the new name")
	desc := c.fs.String("description", "", "the new description")
	rateLimit := c.fs.String("rate-limit", "", "verifications allowed per window (100/1m), or none")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	var in kwclient.UpdateKeyRequest
	if c.given("name") {
		in.Name = name
	}
	if c.given("description") {
		in.Description = desc
	}
	if c.given("rate-limit") {
		rl, err := parseRateLimit(*rateLimit)
		if err != nil {
			return c.usageError(err.Error())
		}
		if rl == nil {
			in.RateLimit = kwclient.Null[kwclient.RateLimit]()
		} else {
			in.RateLimit = kwclient.Value(*rl)
		}
	}
	if in.Name == nil && in.Description == nil && in.RateLimit.IsZero() {
		return c.usageError("nothing to change: give --name, --description or --rate-limit")
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	k, err := api.UpdateKey(ctx, pos[0], in)
	if err != nil {
		return apiError(err)
	}
	if c.json {
		return c.printJSON(k)
	}
	return printKey(c.stdout, k)
}

func keysRevoke(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("keys revoke", "KEY_ID... [--reason TEXT] [--json]", stdin, stdout, stderr)
	reason := c.fs.String("reason", "", "why, kept with the key and in the audit log")
	pos, err := c.parse(args, 1, 1000)
	if err != nil {
		return err
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		k, err := api.RevokeKey(ctx, pos[0], *reason)
		if err != nil {
			return apiError(err)
		}
		if c.json {
			return c.printJSON(k)
		}
		fmt.Fprintf(c.stdout, "Revoked key %s (%s). This cannot be undone.\n", clean(k.ID), clean(k.Name))
		return nil
	}
	// Several keys: one bulk request, each failure reported.
	res, err := api.BulkRevoke(ctx, kwclient.BulkRevokeRequest{IDs: pos, Reason: *reason})
	if err != nil {
		return apiError(err)
	}
	if res.Failed == nil {
		res.Failed = []kwclient.BulkRevokeFailure{}
	}
	if c.json {
		if err := c.printJSON(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.stdout, "Revoked %d of %d keys.\n", res.Revoked, len(pos))
	}
	for _, f := range res.Failed {
		fmt.Fprintf(c.stderr, "%s: %s (%s)\n", clean(f.ID), clean(f.Message), clean(f.Code))
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("%d of %d keys were not revoked", len(res.Failed), len(pos))
	}
	return nil
}

func keysToggle(ctx context.Context, action string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("keys "+action, "KEY_ID [--json]", stdin, stdout, stderr)
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	var k *kwclient.Key
	if action == "deactivate" {
		k, err = api.DeactivateKey(ctx, pos[0])
	} else {
		k, err = api.ReactivateKey(ctx, pos[0])
	}
	if err != nil {
		return apiError(err)
	}
	if c.json {
		return c.printJSON(k)
	}
	fmt.Fprintf(c.stdout, "Key %s (%s) is now %s.\n", clean(k.ID), clean(k.Name), clean(k.Status))
	return nil
}

func keysRotate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("keys rotate", "KEY_ID [--grace DURATION] [--json]", stdin, stdout, stderr)
	grace := c.fs.Duration("grace", 0, "how long the old key keeps working, such as 1h or 0s (default: the server's, 24h)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	var g *time.Duration
	if c.given("grace") {
		if *grace < 0 {
			return c.usageError("--grace must not be negative")
		}
		g = grace
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	k, err := api.RotateKey(ctx, pos[0], g)
	if err != nil {
		return apiError(err)
	}
	if err := c.printSecret(k); err != nil {
		return err
	}
	if !c.json {
		switch {
		case g == nil:
			fmt.Fprintf(c.stdout, "\nThe old key %s keeps working for the server's grace period (24h by default), then expires.\n", clean(pos[0]))
		case *g < time.Second:
			fmt.Fprintf(c.stdout, "\nThe old key %s has expired.\n", clean(pos[0]))
		default:
			fmt.Fprintf(c.stdout, "\nThe old key %s keeps working for %s, then expires.\n", clean(pos[0]), *g)
		}
	}
	return nil
}

func keysDelete(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("keys delete", "KEY_ID [--json]", stdin, stdout, stderr)
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	if err := api.DeleteKey(ctx, pos[0]); err != nil {
		return apiError(err)
	}
	if c.json {
		return c.printJSON(map[string]any{"id": pos[0], "deleted": true})
	}
	fmt.Fprintf(c.stdout, "Deleted key %s.\n", clean(pos[0]))
	return nil
}

// errNotValid is a verification that answered, with a key that is not good.
var errNotValid = errors.New("the key is not valid")

func keysVerify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("keys verify", "[--key-file FILE] [--require-role admin] [--require-scopes a,b] [--json] < key",
		stdin, stdout, stderr)
	keyFile := c.fs.String("key-file", "", "file holding the key to verify (default: the first line of standard input)")
	role := c.fs.String("require-role", "", "the role the key must have: admin or readonly")
	scopes := c.fs.String("require-scopes", "", "comma-separated scopes the key must all hold")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	var secret string
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("--key-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	} else {
		line, err := readLine(c.stdin, "key")
		if err != nil {
			return c.usageError(err.Error() + " (the key to verify is read from standard input or --key-file)")
		}
		secret = strings.TrimSpace(line)
	}
	if secret == "" {
		return c.usageError("the key to verify is empty")
	}
	api, err := c.client(false)
	if err != nil {
		return err
	}
	in := kwclient.VerifyRequest{Key: secret, RequireRole: *role}
	if *scopes != "" {
		in.RequireScopes = splitList(*scopes)
	}
	res, err := api.Verify(ctx, in)
	if err != nil {
		return apiError(err)
	}
	if c.json {
		if err := c.printJSON(res); err != nil {
			return err
		}
	} else {
		tw := c.table()
		fmt.Fprintln(tw, "CODE\tID\tNAME\tOWNER\tTYPE\tROLE\tSCOPES\tEXPIRES")
		if k := res.Key; k != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(res.Code), cell(k.ID), cell(k.Name), cell(k.OwnerID), cell(k.Type),
				cell(k.Role), cell(strings.Join(k.Scopes, ",")), fmtOptTime(k.ExpiresAt, "Never"))
		} else {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\n", cell(res.Code))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if !res.Valid {
		return fmt.Errorf("%w: %s", errNotValid, clean(res.Code))
	}
	return nil
}

func keysUsage(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCLICmd("keys usage", "KEY_ID [--from T] [--to T] [--json]", stdin, stdout, stderr)
	fromS := c.fs.String("from", "", "the first hour, RFC 3339 (default: the server's)")
	toS := c.fs.String("to", "", "the end, RFC 3339 (default: now)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	var from, to time.Time
	for _, f := range []struct {
		s   string
		t   *time.Time
		arg string
	}{{*fromS, &from, "--from"}, {*toS, &to, "--to"}} {
		if f.s == "" {
			continue
		}
		if *f.t, err = time.Parse(time.RFC3339, f.s); err != nil {
			return c.usageError(f.arg + " must be an RFC 3339 time such as 2026-11-22T10:00:00Z")
		}
	}
	api, err := c.client(true)
	if err != nil {
		return err
	}
	u, err := api.Usage(ctx, pos[0], from, to)
	if err != nil {
		return apiError(err)
	}
	if c.json {
		return c.printJSON(u)
	}
	if len(u.Buckets) == 0 {
		fmt.Fprintf(c.stdout, "No verifications of %s from %s to %s.\n", clean(u.KeyID), fmtTime(u.From), fmtTime(u.To))
		return nil
	}
	codes := map[string]bool{}
	for _, b := range u.Buckets {
		for code := range b.Counts {
			codes[code] = true
		}
	}
	cols := make([]string, 0, len(codes))
	for code := range codes {
		cols = append(cols, code)
	}
	sort.Strings(cols)
	tw := c.table()
	fmt.Fprintf(tw, "HOUR\tTOTAL")
	for _, code := range cols {
		fmt.Fprintf(tw, "\t%s", clean(code))
	}
	fmt.Fprintln(tw)
	for _, b := range u.Buckets {
		fmt.Fprintf(tw, "%s\t%d", fmtTime(b.Hour), b.Total)
		for _, code := range cols {
			fmt.Fprintf(tw, "\t%d", b.Counts[code])
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
