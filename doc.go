// Package keyward holds the domain of Keyward, a self-hosted API key service:
// tenants, users, keys, settings, events, the permission table and every
// refusal of the contract (../shared/spec/API.md). It has no HTTP and no SQL:
// transports (package api) and stores (package sqlite) depend on it, never the
// reverse, so "who may revoke a system key" is answered in exactly one place.
package keyward
