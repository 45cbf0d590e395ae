package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	kwclient "github.com/keyward/keyward/client"
)

// The keys and users commands speak to a running server over the JSON API,
// through package client. Their connection comes from --url (KEYWARD_URL)
// and the API key from KEYWARD_API_KEY or the file named by --api-key-file
// (KEYWARD_API_KEY_FILE): never from a flag's value, which would land in the
// shell's history.

// DefaultURL is where the commands look for the server by default.
const DefaultURL = "http://127.0.0.1:8080"

// cliCmd is one API subcommand being run: its flags, streams and options.
type cliCmd struct {
	name     string // "keys create"
	synopsis string // what follows the name in the usage line
	fs       *flag.FlagSet
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer

	url        string
	apiKeyFile string
	json       bool
}

func newCLICmd(name, synopsis string, stdin io.Reader, stdout, stderr io.Writer) *cliCmd {
	c := &cliCmd{name: name, synopsis: synopsis, stdin: stdin, stdout: stdout, stderr: stderr}
	c.fs = newFlagSet(name, stderr)
	c.fs.StringVar(&c.url, "url", DefaultURL, "the Keyward server (KEYWARD_URL)")
	c.fs.StringVar(&c.apiKeyFile, "api-key-file", "", "file holding the API key (KEYWARD_API_KEY_FILE; default: the key in KEYWARD_API_KEY)")
	c.fs.BoolVar(&c.json, "json", false, "print JSON for scripts instead of a table")
	c.fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: keyward %s %s\n\nflags:\n", name, synopsis)
		c.fs.PrintDefaults()
	}
	return c
}

// connFlags read their environment variables; the other flags of these
// commands do not, so that a stray KEYWARD_NAME cannot change a command.
var connFlags = []string{"url", "api-key-file"}

// parse reads flags given anywhere among the arguments (keys get ID --json)
// and requires between min and max positional arguments (max < 0: any).
func (c *cliCmd) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, errUsage
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	given := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range connFlags {
		env := "KEYWARD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !given[name] {
			if err := c.fs.Set(name, v); err != nil {
				return nil, fmt.Errorf("%s: %w", env, err)
			}
		}
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return nil, c.usageError("")
	}
	return pos, nil
}

// given reports whether a flag was on the command line.
func (c *cliCmd) given(name string) bool {
	found := false
	c.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// usageError prints msg (if any) and the usage line, for exit code 2.
func (c *cliCmd) usageError(msg string) error {
	if msg != "" {
		fmt.Fprintf(c.stderr, "keyward %s: %s\n", c.name, msg)
	}
	fmt.Fprintf(c.stderr, "usage: keyward %s %s\n(keyward %s -h lists the flags)\n", c.name, c.synopsis, c.name)
	return errUsage
}

// client connects with the API key, when the command needs one.
func (c *cliCmd) client(needKey bool) (*kwclient.Client, error) {
	opts := []kwclient.Option{kwclient.WithUserAgent("keyward-cli/" + Version())}
	if needKey {
		key, err := c.apiKey()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kwclient.WithAPIKey(key))
	}
	if c.url == "" {
		return nil, c.usageError("--url (KEYWARD_URL) is empty")
	}
	return kwclient.New(c.url, opts...), nil
}

// apiKey reads the key from --api-key-file, else KEYWARD_API_KEY.
func (c *cliCmd) apiKey() (string, error) {
	if c.apiKeyFile != "" {
		b, err := os.ReadFile(c.apiKeyFile)
		if err != nil {
			return "", fmt.Errorf("--api-key-file: %w", err)
		}
		key := strings.TrimSpace(string(b))
		if key == "" {
			return "", fmt.Errorf("--api-key-file %s is empty", c.apiKeyFile)
		}
		return key, nil
	}
	if key := strings.TrimSpace(os.Getenv("KEYWARD_API_KEY")); key != "" {
		return key, nil
	}
	return "", c.usageError("no API key: set KEYWARD_API_KEY, or --api-key-file FILE")
}

// readLine reads one line from r: a secret or a password, never a flag.
func readLine(r io.Reader, what string) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("no %s on standard input", what)
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// apiError turns a refusal into the message the user sees on stderr: the
// problem's detail, then its code and status.
func apiError(err error) error {
	var e *kwclient.Error
	if errors.As(err, &e) {
		if e.Code != "" {
			return fmt.Errorf("%s (%s, %d)", clean(e.Message()), e.Code, e.Status)
		}
		return fmt.Errorf("%s (HTTP %d)", clean(e.Message()), e.Status)
	}
	return err
}

// errHelp is -h: the usage went to stderr, and that is not a failure.
var errHelp = errors.New("help")

// printJSON writes v as indented JSON, one document.
func (c *cliCmd) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *cliCmd) table() *tabwriter.Writer { return tabwriterFor(c.stdout) }

func tabwriterFor(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// clean makes server-supplied text safe for a terminal: control characters
// (escape sequences, tabs and newlines that would break the table) become
// visible placeholders.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			b.WriteString("�")
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// cell is clean text for a table cell; empty shows as "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

// fmtTime shows a time in UTC to the minute.
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") + "Z" }

// fmtOptTime shows an absent time as none.
func fmtOptTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return fmtTime(*t)
}

// splitList reads a comma-separated flag value; "" is an empty list.
func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseExpiry reads --expires: an RFC 3339 time, or a time from now such as
// 90d or 36h.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return now.AddDate(0, 0, n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--expires %q: use an RFC 3339 time (2026-11-22T10:00:00Z) or a time from now (90d, 36h)", s)
}

func tokenOrNull(t string) *string {
	if t == "" {
		return nil
	}
	return &t
}

// runAPI runs an API subcommand and turns -h into success.
func runAPI(ctx context.Context, group string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var err error
	switch group {
	case "keys":
		err = runKeys(ctx, args, stdin, stdout, stderr)
	case "users":
		err = runUsers(ctx, args, stdin, stdout, stderr)
	}
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// pickSub finds the subcommand; an unknown or missing one is a usage error.
func pickSub(group string, args []string, subs []string, stderr io.Writer) (string, []string, error) {
	usage := fmt.Sprintf("usage: keyward %s %s [flags]\n", group, strings.Join(subs, "|"))
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return "", nil, errUsage
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stderr, usage)
		return "", nil, errHelp
	}
	for _, s := range subs {
		if args[0] == s {
			return s, args[1:], nil
		}
	}
	fmt.Fprintf(stderr, "keyward %s: unknown command %q\n%s", group, args[0], usage)
	return "", nil, errUsage
}
