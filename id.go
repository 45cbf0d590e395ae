package keyward

import (
	"io"
	"math/big"
)

// ID prefixes of the contract.
const (
	PrefixTenant  = "ten_"
	PrefixUser    = "usr_"
	PrefixKey     = "key_"
	PrefixEvent   = "evt_"
	PrefixSession = "ses_"
)

// NewID draws a random, opaque ID: the type prefix and 16 random bytes in
// fixed-width base62 (22 characters), so IDs never reveal order or volume.
func NewID(rand io.Reader, prefix string) (string, error) {
	var raw [16]byte
	if _, err := io.ReadFull(rand, raw[:]); err != nil {
		return "", err
	}
	buf := make([]byte, len(prefix)+22)
	copy(buf, prefix)
	encodeBase62(buf[len(prefix):], new(big.Int).SetBytes(raw[:]))
	return string(buf), nil
}
