// Package oauth provides bearer-token PerRPCCredentials: each call sends
// "authorization: Bearer <token>", and only over a connection with
// transport security (TLS).
//
// NewStaticToken sends one fixed token. NewTokenSource sends tokens from
// a TokenSource (an OAuth2 client, a workload identity agent, a file),
// cached until shortly before they expire and refreshed by one caller at
// a time however many calls need a token at once.
//
// Unlike grpc-go's package of the same name, it does not depend on
// golang.org/x/oauth2: a TokenSource is a small interface of our own, and
// an oauth2.TokenSource fits it in three lines (see TokenSourceFunc).
package oauth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/h2rpc/h2rpc/rpc/credentials"
)

// RefreshMargin is how long before its expiry a cached token is
// refreshed, so that a token does not expire on its way to the server.
const RefreshMargin = 10 * time.Second

// ErrEmptyToken is the error of a TokenSource that returned an empty
// token without an error.
var ErrEmptyToken = errors.New("oauth: the token source returned an empty token")

// TokenSource gives access tokens.
type TokenSource interface {
	// Token returns a token and when it expires (the zero time: never).
	Token(ctx context.Context) (token string, expiry time.Time, err error)
}

// TokenSourceFunc adapts a function to TokenSource. For example, with
// golang.org/x/oauth2:
//
//	oauth.TokenSourceFunc(func(ctx context.Context) (string, time.Time, error) {
//		t, err := ts.Token()
//		if err != nil {
//			return "", time.Time{}, err
//		}
//		return t.AccessToken, t.Expiry, nil
//	})
type TokenSourceFunc func(ctx context.Context) (string, time.Time, error)

// Token calls f.
func (f TokenSourceFunc) Token(ctx context.Context) (string, time.Time, error) { return f(ctx) }

// staticToken is NewStaticToken's credentials.
type staticToken struct {
	md map[string]string
}

// NewStaticToken returns credentials that send token as a bearer token
// with every call. They require transport security.
func NewStaticToken(token string) credentials.PerRPCCredentials {
	return staticToken{md: map[string]string{"authorization": "Bearer " + token}}
}

func (s staticToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return s.md, nil
}

func (staticToken) RequireTransportSecurity() bool { return true }

// refreshing is NewTokenSource's credentials.
type refreshing struct {
	src     TokenSource
	now     func() time.Time // tests
	waiting atomic.Int32     // callers waiting for a refresh (tests)

	mu         sync.Mutex
	md         map[string]string // the current token's metadata; nil before the first
	expiry     time.Time         // zero: never
	refreshing chan struct{}     // closed when the refresh under way ends; nil when none
}

// NewTokenSource returns credentials that send src's tokens as bearer
// tokens. A token is reused until RefreshMargin before its expiry; then
// the next call asks src for a new one while concurrent calls wait for
// that one refresh (each honouring its own context). An error from src
// fails the calls that waited for it (with UNAUTHENTICATED, or with the
// error's own status). They require transport security.
func NewTokenSource(src TokenSource) credentials.PerRPCCredentials {
	return &refreshing{src: src, now: time.Now}
}

func (r *refreshing) RequireTransportSecurity() bool { return true }

func (r *refreshing) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	for {
		r.mu.Lock()
		if r.md != nil && (r.expiry.IsZero() || r.now().Before(r.expiry.Add(-RefreshMargin))) {
			md := r.md
			r.mu.Unlock()
			return md, nil
		}
		if wait := r.refreshing; wait != nil {
			r.mu.Unlock()
			r.waiting.Add(1)
			select {
			case <-wait:
				r.waiting.Add(-1)
				continue // look again: the refresh may have failed
			case <-ctx.Done():
				r.waiting.Add(-1)
				return nil, ctx.Err()
			}
		}
		r.refreshing = make(chan struct{})
		r.mu.Unlock()
		return r.refresh(ctx)
	}
}

// refresh asks src for a token; the caller marked the refresh under way
// (r.refreshing). The mark is gone when it returns, also when src
// panics, and the callers waiting for it look again.
func (r *refreshing) refresh(ctx context.Context) (map[string]string, error) {
	var md map[string]string // the new token's, once src gave one
	var exp time.Time
	defer func() {
		r.mu.Lock()
		done := r.refreshing
		r.refreshing = nil
		if md != nil {
			r.md, r.expiry = md, exp
		}
		r.mu.Unlock()
		close(done)
	}()
	tok, exp, err := r.src.Token(ctx)
	if err == nil && tok == "" {
		err = ErrEmptyToken
	}
	if err != nil {
		return nil, fmt.Errorf("oauth: getting a token: %w", err)
	}
	md = map[string]string{"authorization": "Bearer " + tok}
	return md, nil
}
