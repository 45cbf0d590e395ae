package sqlite

import (
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"modernc.org/sqlite"

	"github.com/keyward/keyward"
)

// Times are stored as INTEGER unix microseconds in UTC; the domain truncates
// to microseconds before writing, so a round trip is exact.

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros stores a nil time as NULL.
func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

// timePtr reads a nullable time column.
func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func nullInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func nullString(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func stringPtr(v sql.NullString) *string {
	if !v.Valid {
		return nil
	}
	s := v.String
	return &s
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

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// collect reads every row with scan and closes rows.
func collect[T any](rows *sql.Rows, op string, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// mustChange turns "no row changed" into ENotFound with the given message.
func mustChange(op string, res sql.Result, notFound string) error {
	n, err := rowsAffected(op, res)
	if err != nil {
		return err
	}
	if n == 0 {
		return keyward.Errorf(keyward.ENotFound, "%s", notFound)
	}
	return nil
}

// likePattern matches q as a substring in a LIKE ... ESCAPE '\' clause.
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	if !isASCII(q) {
		q = strings.ToLower(q) // compared with kw_lower(column): see searched
	}
	return "%" + r.Replace(q) + "%"
}

// searched is how a search reads a column. SQLite's LIKE folds ASCII letters
// only, which is exact for an ASCII search; for any other, both sides are
// lowered by Go's Unicode rules (kw_lower), so that "émile" finds "Émile".
func searched(col, q string) string {
	if isASCII(q) {
		return col
	}
	return "kw_lower(" + col + ")"
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// idGenerators lends Go ID generators to SQL: a statement names one by
// the handle it was given (kw_new_id(:gen)), and every call of
// kw_new_id(handle) is a new ID from it. A handle lives as long as the
// statement that needs it.
var idGenerators = &handles[func() (string, error)]{}

func init() {
	// Not deterministic: each call is a new ID.
	sqlite.MustRegisterScalarFunction("kw_new_id", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		h, ok := args[0].(int64)
		if !ok {
			return nil, fmt.Errorf("kw_new_id(%v): not a generator handle", args[0])
		}
		f, ok := idGenerators.get(h)
		if !ok {
			return nil, fmt.Errorf("kw_new_id(%d): no such generator", h)
		}
		return f() // an error fails the statement
	})
	sqlite.MustRegisterDeterministicScalarFunction("kw_lower", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return strings.ToLower(v), nil
		case []byte:
			return strings.ToLower(string(v)), nil
		}
		return args[0], nil
	})
}

// pageSize is the caller's validated page size, or the contract's default.
func pageSize(n int) int {
	if n <= 0 {
		return 50
	}
	return n
}
