package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Times are stored as bigint unix microseconds in UTC; the domain truncates
// to microseconds before writing, so a round trip is exact.

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros stores a nil time as NULL.
func nullMicros(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	us := t.UnixMicro()
	return &us
}

// nullString is s, or NULL when it is empty.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// timePtr reads a nullable time column.
func timePtr(us *int64) *time.Time {
	if us == nil {
		return nil
	}
	t := fromMicros(*us)
	return &t
}

// jsonList stores a list of strings as a JSON array; nil becomes [].
func jsonList(l []string) (string, error) {
	if l == nil {
		return "[]", nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// parseList reads a JSON array of strings; it is never nil.
func parseList(s string) ([]string, error) {
	l := []string{}
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("read JSON list: %w", err)
	}
	if l == nil {
		l = []string{}
	}
	return l, nil
}

// jsonObject stores a map as a JSON object; nil becomes {}.
func jsonObject(m map[string]any) (string, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// parseObject reads a JSON object; it is never nil.
func parseObject(s string) (map[string]any, error) {
	m := map[string]any{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("read JSON object: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// fold lowers ASCII letters only, as lower() does over the schema's
// COLLATE "C" columns (and as SQLite's NOCASE compares).
func fold(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// likePattern matches q case-insensitively as a substring in a
// lower(column) LIKE ... ESCAPE '\' clause.
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	if !isASCII(q) {
		return "%" + strings.ToLower(r.Replace(q)) + "%" // see lowered
	}
	return "%" + fold(r.Replace(q)) + "%"
}

// lowered is how a search reads a column: lower() under the column's own
// collation ("C": ASCII letters only, exact for an ASCII search), or, for a
// search with other letters, under fold (DB.fold: ICU's root collation where
// the server has ICU, else the database's default), so that "émile" finds
// "Émile".
func lowered(col, q, fold string) string {
	if isASCII(q) {
		return "lower(" + col + ")"
	}
	return `lower(` + col + ` COLLATE ` + fold + `)`
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// pageSize is the caller's validated page size, or the contract's default.
func pageSize(n int) int {
	if n <= 0 {
		return 50
	}
	return n
}
