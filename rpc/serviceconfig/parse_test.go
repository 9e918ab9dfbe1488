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

func TestParseRejectsInvalidFields(t *testing.T) {
	const rp = `"initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]`
	for _, js := range []string{
		`null`,
		`{"methodConfig": [{"timeout": "-1s"}]}`,
		`{"methodConfig": [{"timeout": "1.s"}]}`,
		`{"methodConfig": [{"timeout": 1}]}`,
		`{"methodConfig": [{"waitForReady": "yes"}]}`,
		`{"methodConfig": [{"name": [{"service": "s", "method": "m"}, {"service": "s", "method": "m"}]}]}`,
		`{"methodConfig": [{"name": [{}]}, {"name": [{}]}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2, ` + rp + `}, "hedgingPolicy": {"maxAttempts": 2}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": -99999999999999999999, ` + rp + `}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2.5, ` + rp + `}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "-1s", "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 0, "retryableStatusCodes": ["UNAVAILABLE"]}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": -2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 1, "retryableStatusCodes": ["OK"]}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 1, "retryableStatusCodes": [17]}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 1, "retryableStatusCodes": [null]}}]}`,
		`{"methodConfig": [{"retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 1}}]}`,
		`{"methodConfig": [{"retryPolicy": {"initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}`,
		`{"retryThrottling": {"maxTokens": 1001, "tokenRatio": 1}}`,
		`{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0}}`,
		`{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.0004}}`,
		`{"retryThrottling": {"maxTokens": 10}}`,
		`{"loadBalancingConfig": [{}]}`,
	} {
		if c, err := Parse(js); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%s) = %+v, %v; want ErrInvalid", js, c, err)
		}
	}
}

func TestParseAcceptsEdgeValues(t *testing.T) {
	c, err := Parse(`{
	  "unknownTopLevel": {"anything": [1, 2]},
	  "methodConfig": [{
	    "name": [{"service": "s.S"}], "unknownField": true,
	    "timeout": "315576000000s", "maxRequestMessageBytes": "99999999999999999999999",
	    "retryPolicy": {"maxAttempts": "99999999999999999999", "initialBackoff": "0.000000001s",
	      "maxBackoff": "2s", "backoffMultiplier": 1.5, "retryableStatusCodes": ["UNAVAILABLE", "UNAVAILABLE", 14]}
	  }],
	  "retryThrottling": {"maxTokens": 1000, "tokenRatio": 0.0005}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := c.MethodConfig("/s.S/Any")
	if !ok || m.Timeout <= 0 || *m.MaxRequestMessageBytes != 1<<31-1 {
		t.Fatalf("method config = %+v, %v", m, ok)
	}
	if p := m.RetryPolicy; p.MaxAttempts != 5 || p.InitialBackoff != time.Nanosecond || len(p.RetryableStatusCodes) != 1 {
		t.Errorf("retry policy = %+v", p)
	}
	if c.RetryThrottling.TokenRatio != 0.001 {
		t.Errorf("token ratio = %v", c.RetryThrottling.TokenRatio)
	}
}

// FuzzParse checks that Parse never panics and that its every error wraps
// ErrInvalid, and that what it accepts is consistent.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `{"methodConfig": [{"name": [{"service": "a.B", "method": "C"}], "timeout": "1.5s"}]}`,
		`{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", 4]}}]}`,
		`{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}`,
		`{"loadBalancingConfig": [{"round_robin": {}}], "loadBalancingPolicy": "PICK_FIRST"}`,
		`{"methodConfig": [{"maxRequestMessageBytes": "12", "maxResponseMessageBytes": 1e3}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, js string) {
		c, err := Parse(js)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", js, err)
			}
			return
		}
		for _, m := range c.Methods {
			if m.Timeout < 0 {
				t.Fatalf("Parse(%q): negative timeout %v", js, m.Timeout)
			}
			if p := m.RetryPolicy; p != nil {
				if p.MaxAttempts < 2 || p.MaxAttempts > 5 || p.InitialBackoff <= 0 || p.MaxBackoff <= 0 ||
					!(p.BackoffMultiplier > 0) || len(p.RetryableStatusCodes) == 0 {
					t.Fatalf("Parse(%q): bad retry policy %+v", js, p)
				}
			}
			c.MethodConfig("/a.B/C")
		}
		if rt := c.RetryThrottling; rt != nil && (rt.MaxTokens <= 0 || rt.MaxTokens > 1000 || rt.TokenRatio <= 0) {
			t.Fatalf("Parse(%q): bad throttling %+v", js, rt)
		}
	})
}
