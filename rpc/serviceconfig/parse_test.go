package serviceconfig

import (
	"errors"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

func TestParseFullConfig(t *testing.T) {
	c, err := Parse(`{
	  "loadBalancingConfig": [{"round_robin": {}}],
	  "methodConfig": [{
	    "name": [{"service": "echo.Echo", "method": "Unary"}],
	    "timeout": "1.5s", "waitForReady": true,
	    "maxRequestMessageBytes": 1024, "maxResponseMessageBytes": "2048",
	    "retryPolicy": {"maxAttempts": 9, "initialBackoff": "0.1s", "maxBackoff": "1s",
	      "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", 4]}
	  }, {"name": [{}], "timeout": "10s"}],
	  "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1234}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.LoadBalancing) != 1 || c.LoadBalancing[0].Name != "round_robin" {
		t.Errorf("LoadBalancing = %+v", c.LoadBalancing)
	}
	m, ok := c.MethodConfig("/echo.Echo/Unary")
	if !ok || m.Timeout != 1500*time.Millisecond || !*m.WaitForReady || *m.MaxRequestMessageBytes != 1024 || *m.MaxResponseMessageBytes != 2048 {
		t.Fatalf("method config = %+v, %v", m, ok)
	}
	p := m.RetryPolicy
	if p.MaxAttempts != 5 || p.InitialBackoff != 100*time.Millisecond || p.MaxBackoff != time.Second || p.BackoffMultiplier != 2 ||
		len(p.RetryableStatusCodes) != 2 || p.RetryableStatusCodes[0] != codes.Unavailable || p.RetryableStatusCodes[1] != codes.DeadlineExceeded {
		t.Errorf("retry policy = %+v", p)
	}
	if d, ok := c.MethodConfig("/other.Svc/M"); !ok || d.Timeout != 10*time.Second {
		t.Errorf("default method config = %+v, %v", d, ok)
	}
	if c.RetryThrottling.TokenRatio != 0.123 {
		t.Errorf("token ratio = %v", c.RetryThrottling.TokenRatio)
	}
}

func TestParseRejectsInvalid(t *testing.T) {
	for _, js := range []string{
		``, `{`, `[]`, `{"methodConfig": 1}`, `{} {}`,
		`{"loadBalancingConfig": [{"a": {}, "b": {}}]}`,
		`{"methodConfig": [{"name": [{"method": "M"}]}]}`,
		`{"methodConfig": [{"name": [{"service": "s"}]}, {"name": [{"service": "s"}]}]}`,
		`{"methodConfig": [{"timeout": "1"}]}`,
		`{"methodConfig": [{"timeout": "1.0000000001s"}]}`,
		`{"methodConfig": [{"maxRequestMessageBytes": -1}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 1, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2, "initialBackoff": "0s", "maxBackoff": "1s", "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 1, "retryableStatusCodes": []}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 1, "retryableStatusCodes": ["NOPE"]}}]}`,
		`{"retryThrottling": {"maxTokens": 0, "tokenRatio": 1}}`,
	} {
		if c, err := Parse(js); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%s) = %+v, %v; want ErrInvalid", js, c, err)
		}
	}
}
