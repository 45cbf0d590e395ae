package client

import (
	"errors"
	"iter"
)

// paginate follows next-page tokens from first until a page has none.
// Ranging over the sequence again starts again from first.
func paginate[T any](fetch func(token string) ([]T, string, error), first string) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		token := first
		for {
			items, next, err := fetch(token)
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range items {
				if !yield(&items[i], nil) {
					return
				}
			}
			if next == "" {
				return
			}
			if len(items) == 0 || next == token {
				yield(nil, errors.New("keyward: the server answered a page that does not move on"))
				return
			}
			token = next
		}
	}
}
