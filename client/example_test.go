package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/keyward/keyward/client"
)

// The examples talk to a Keyward server, so they are compiled, not run.

func Example() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("KEYWARD_API_KEY")))

	k, err := c.CreateKey(ctx, client.CreateKeyRequest{
		Name:   "billing export",
		Role:   client.KeyRoleReadonly,
		Scopes: []string{"invoices:read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	// The secret is in this answer only: hand it over now.
	fmt.Println("new key", k.ID, "starts with", k.Start)

	res, err := c.Verify(ctx, client.VerifyRequest{Key: k.Secret, RequireScopes: []string{"invoices:read"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Code) // VALID
}

func ExampleNew() {
	// A client with its own HTTP client and a user agent that names the
	// caller in Keyward's audit events.
	c := client.New("https://keyward.internal.example",
		client.WithAPIKey(os.Getenv("KEYWARD_API_KEY")),
		client.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}),
		client.WithUserAgent("billing-service/2.3"))
	me, err := c.Me(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("acting as", me.User.Email, "in", me.Tenant.Name)
}

func ExampleClient_Login() {
	ctx := context.Background()
	anon := client.New("http://127.0.0.1:8080")
	s, err := anon.Login(ctx, "ada@example.com", os.Getenv("PASSWORD"))
	if client.IsUnauthenticated(err) {
		log.Fatal("wrong email or password")
	} else if err != nil {
		log.Fatal(err)
	}
	c := anon.With(client.WithSessionToken(s.Token))
	defer c.Logout(ctx)
	fmt.Println("logged in until", s.ExpiresAt)
}

func ExampleClient_AllKeys() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("KEYWARD_API_KEY")))
	// Every active system key, page after page.
	for k, err := range c.AllKeys(ctx, client.ListKeysParams{Type: client.TypeSystem, Status: client.StatusActive, PageSize: 200}) {
		if err != nil {
			log.Fatal(err)
		}
		last := "Never"
		if k.LastUsedAt != nil {
			last = k.LastUsedAt.Format(time.RFC3339)
		}
		fmt.Println(k.ID, k.Name, k.OwnerName, last)
	}
}

func ExampleClient_RevokeKey() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("KEYWARD_API_KEY")))
	_, err := c.RevokeKey(ctx, "key_2g0Yx4BMqMQlpKZPOKt7NL", "leaked in a build log")
	var e *client.Error
	switch {
	case client.IsCode(err, client.CodeNotRevocable):
		fmt.Println("already revoked or expired")
	case errors.As(err, &e):
		fmt.Println("refused:", e.Status, e.Code, e.Detail)
	case err != nil:
		log.Fatal(err) // the network, not Keyward
	}
}

func ExampleClient_RotateKey() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("KEYWARD_API_KEY")))
	// The old key keeps working for an hour while the new one is deployed.
	k, err := c.RotateKey(ctx, "key_2g0Yx4BMqMQlpKZPOKt7NL", client.Ptr(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new key", k.ID)
}

func ExampleClient_UpdateSettings() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("KEYWARD_API_KEY")))
	// Cap new keys at 90 days and leave everything else as it is ...
	if _, err := c.UpdateSettings(ctx, client.SettingsUpdate{MaxExpirationDays: client.Value(90)}); err != nil {
		log.Fatal(err)
	}
	// ... and later lift the cap: null, not "leave out".
	if _, err := c.UpdateSettings(ctx, client.SettingsUpdate{MaxExpirationDays: client.Null[int]()}); err != nil {
		log.Fatal(err)
	}
}

func ExampleClient_Middleware() {
	// Keyward verifies the keys; no credential is needed for that.
	kw := client.New("http://127.0.0.1:8080")

	invoices := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := client.KeyFromContext(r.Context())
		fmt.Fprintf(w, "invoices of tenant %s for key %s (owner %s)\n", k.TenantID, k.ID, k.OwnerID)
	})

	mux := http.NewServeMux()
	// Readers need the invoices:read scope; writers an admin key too.
	mux.Handle("GET /invoices", kw.Middleware(client.MiddlewareOptions{
		RequireScopes: []string{"invoices:read"},
	})(invoices))
	mux.Handle("POST /invoices", kw.Middleware(client.MiddlewareOptions{
		RequireRole:   client.KeyRoleAdmin,
		RequireScopes: []string{"invoices:write"},
		CacheTTL:      2 * time.Second, // revocations reach this route within 2 s
	})(invoices))
	log.Fatal(http.ListenAndServe("127.0.0.1:9000", mux))
}

func ExampleVerifier_Verify() {
	// Outside HTTP (a queue consumer, a gRPC interceptor), a Verifier checks
	// keys with the same cache.
	v := client.New("http://127.0.0.1:8080").NewVerifier(client.MiddlewareOptions{RequireScopes: []string{"jobs:run"}})
	k, err := v.Verify(context.Background(), os.Getenv("JOB_API_KEY"))
	var e *client.Error
	if errors.As(err, &e) {
		log.Fatalf("refused: %d %s (%s)", e.Status, e.Detail, e.VerifyCode)
	}
	fmt.Println("job for tenant", k.TenantID)
}
