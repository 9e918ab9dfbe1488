package serviceconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// ErrInvalid is wrapped by every error of Parse: the JSON is not a valid
// service config.
var ErrInvalid = errors.New("serviceconfig: invalid service config")

// The JSON shape of a service config (service_config.proto's JSON form).
type jsonConfig struct {
	LoadBalancingPolicy string                       `json:"loadBalancingPolicy"`
	LoadBalancingConfig []map[string]json.RawMessage `json:"loadBalancingConfig"`
	MethodConfig        []jsonMethodConfig           `json:"methodConfig"`
	RetryThrottling     *struct {
		MaxTokens  *float64 `json:"maxTokens"`
		TokenRatio *float64 `json:"tokenRatio"`
	} `json:"retryThrottling"`
	HealthCheckConfig *struct {
		ServiceName *string `json:"serviceName"`
	} `json:"healthCheckConfig"`
}

type jsonMethodConfig struct {
	Name []struct {
		Service *string `json:"service"`
		Method  *string `json:"method"`
	} `json:"name"`
	WaitForReady            *bool            `json:"waitForReady"`
	Timeout                 *string          `json:"timeout"`
	MaxRequestMessageBytes  *json.RawMessage `json:"maxRequestMessageBytes"`
	MaxResponseMessageBytes *json.RawMessage `json:"maxResponseMessageBytes"`
	RetryPolicy             *struct {
		MaxAttempts          *json.RawMessage  `json:"maxAttempts"`
		InitialBackoff       *string           `json:"initialBackoff"`
		MaxBackoff           *string           `json:"maxBackoff"`
		BackoffMultiplier    *float64          `json:"backoffMultiplier"`
		RetryableStatusCodes []json.RawMessage `json:"retryableStatusCodes"`
	} `json:"retryPolicy"`
	// HedgingPolicy is only checked for: a method config may not have
	// both policies. Hedging itself is not implemented.
	HedgingPolicy json.RawMessage `json:"hedgingPolicy"`
}

// maxRetryAttempts caps a retry policy's maxAttempts (gRFC A6).
const maxRetryAttempts = 5

// Parse parses and validates a service config in JSON. Its errors wrap
// ErrInvalid and say which field is wrong.
func Parse(js string) (*Config, error) {
	if strings.TrimSpace(js) == "null" {
		return nil, fmt.Errorf("%w: null is not a JSON object", ErrInvalid)
	}
	var jc jsonConfig
	dec := json.NewDecoder(strings.NewReader(js))
	if err := dec.Decode(&jc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	c := &Config{Raw: js}
	for i, entry := range jc.LoadBalancingConfig {
		if len(entry) != 1 {
			return nil, fmt.Errorf("%w: loadBalancingConfig[%d] must name exactly one policy, it names %d", ErrInvalid, i, len(entry))
		}
		for name, cfg := range entry {
			c.LoadBalancing = append(c.LoadBalancing, LBConfig{Name: name, Config: cfg})
		}
	}
	if len(c.LoadBalancing) == 0 && jc.LoadBalancingPolicy != "" {
		c.LoadBalancing = []LBConfig{{Name: strings.ToLower(jc.LoadBalancingPolicy)}}
	}
	seen := map[Name]bool{}
	for i, jm := range jc.MethodConfig {
		m, err := parseMethod(jm, seen)
		if err != nil {
			return nil, fmt.Errorf("%w: methodConfig[%d]: %v", ErrInvalid, i, err)
		}
		c.Methods = append(c.Methods, m)
	}
	if rt := jc.RetryThrottling; rt != nil {
		if rt.MaxTokens == nil || rt.TokenRatio == nil {
			return nil, fmt.Errorf("%w: retryThrottling needs maxTokens and tokenRatio", ErrInvalid)
		}
		if *rt.MaxTokens <= 0 || *rt.MaxTokens > 1000 {
			return nil, fmt.Errorf("%w: retryThrottling.maxTokens %v is not in (0, 1000]", ErrInvalid, *rt.MaxTokens)
		}
		// Three decimal places are kept (gRFC A6); a ratio that rounds
		// to 0 would never refill the bucket.
		ratio := math.Round(*rt.TokenRatio*1000) / 1000
		if !(ratio > 0) || math.IsInf(ratio, 0) {
			return nil, fmt.Errorf("%w: retryThrottling.tokenRatio %v is not positive with three decimals", ErrInvalid, *rt.TokenRatio)
		}
		c.RetryThrottling = &RetryThrottling{MaxTokens: *rt.MaxTokens, TokenRatio: ratio}
	}
	if hc := jc.HealthCheckConfig; hc != nil && hc.ServiceName != nil {
		c.HealthCheckServiceName = hc.ServiceName
	}
	return c, nil
}

func parseMethod(jm jsonMethodConfig, seen map[Name]bool) (MethodConfig, error) {
	var m MethodConfig
	for j, jn := range jm.Name {
		var n Name
		if jn.Service != nil {
			n.Service = *jn.Service
		}
		if jn.Method != nil {
			n.Method = *jn.Method
		}
		if n.Service == "" && n.Method != "" {
			return m, fmt.Errorf("name[%d] has a method but no service", j)
		}
		if seen[n] {
			return m, fmt.Errorf("name[%d] %q/%q is in two method configs", j, n.Service, n.Method)
		}
		seen[n] = true
		m.Names = append(m.Names, n)
	}
	m.WaitForReady = jm.WaitForReady
	if jm.Timeout != nil {
		d, err := parseDuration(*jm.Timeout)
		if err != nil {
			return m, fmt.Errorf("timeout: %v", err)
		}
		if d < 0 {
			return m, fmt.Errorf("timeout %q is negative", *jm.Timeout)
		}
		m.Timeout = d
	}
	var err error
	if m.MaxRequestMessageBytes, err = parseSize(jm.MaxRequestMessageBytes); err != nil {
		return m, fmt.Errorf("maxRequestMessageBytes: %v", err)
	}
	if m.MaxResponseMessageBytes, err = parseSize(jm.MaxResponseMessageBytes); err != nil {
		return m, fmt.Errorf("maxResponseMessageBytes: %v", err)
	}
	if jm.RetryPolicy != nil && len(jm.HedgingPolicy) > 0 && string(jm.HedgingPolicy) != "null" {
		return m, errors.New("retryPolicy and hedgingPolicy are mutually exclusive")
	}
	if rp := jm.RetryPolicy; rp != nil {
		p := &RetryPolicy{}
		if rp.MaxAttempts == nil {
			return m, errors.New("retryPolicy.maxAttempts is required")
		}
		n, err := parseInt(*rp.MaxAttempts)
		if errors.Is(err, strconv.ErrRange) && !strings.Contains(string(*rp.MaxAttempts), "-") {
			// A huge count is capped like any count above 5.
			n, err = maxRetryAttempts, nil
		}
		if err != nil || n < 2 {
			return m, fmt.Errorf("retryPolicy.maxAttempts %s is not an integer of at least 2", *rp.MaxAttempts)
		}
		p.MaxAttempts = int(min(n, maxRetryAttempts))
		if rp.InitialBackoff == nil || rp.MaxBackoff == nil || rp.BackoffMultiplier == nil {
			return m, errors.New("retryPolicy needs initialBackoff, maxBackoff and backoffMultiplier")
		}
		if p.InitialBackoff, err = parseDuration(*rp.InitialBackoff); err != nil || p.InitialBackoff <= 0 {
			return m, fmt.Errorf("retryPolicy.initialBackoff %q is not a positive duration", *rp.InitialBackoff)
		}
		if p.MaxBackoff, err = parseDuration(*rp.MaxBackoff); err != nil || p.MaxBackoff <= 0 {
			return m, fmt.Errorf("retryPolicy.maxBackoff %q is not a positive duration", *rp.MaxBackoff)
		}
		if p.BackoffMultiplier = *rp.BackoffMultiplier; !(p.BackoffMultiplier > 0) || math.IsInf(p.BackoffMultiplier, 0) {
			return m, fmt.Errorf("retryPolicy.backoffMultiplier %v is not positive", p.BackoffMultiplier)
		}
		if len(rp.RetryableStatusCodes) == 0 {
			return m, errors.New("retryPolicy.retryableStatusCodes is empty")
		}
		for _, raw := range rp.RetryableStatusCodes {
			c, err := parseCode(raw)
			if err != nil {
				return m, fmt.Errorf("retryPolicy.retryableStatusCodes: %v", err)
			}
			if c == codes.OK {
				return m, errors.New("retryPolicy.retryableStatusCodes: OK is not a failure to retry")
			}
			if !slices.Contains(p.RetryableStatusCodes, c) {
				p.RetryableStatusCodes = append(p.RetryableStatusCodes, c)
			}
		}
		m.RetryPolicy = p
	}
	return m, nil
}

// parseDuration parses a google.protobuf.Duration in JSON: decimal
// seconds with an "s" suffix, at most nine fractional digits ("1.5s").
func parseDuration(s string) (time.Duration, error) {
	num, ok := strings.CutSuffix(s, "s")
	if !ok || num == "" || strings.HasPrefix(num, "+") {
		return 0, fmt.Errorf("%q is not a duration like \"1.5s\"", s)
	}
	neg := strings.HasPrefix(num, "-")
	num = strings.TrimPrefix(num, "-")
	whole, frac, dot := strings.Cut(num, ".")
	if whole == "" || (dot && frac == "") || len(frac) > 9 || strings.ContainsAny(whole+frac, "+-eE_") {
		return 0, fmt.Errorf("%q is not a duration like \"1.5s\"", s)
	}
	sec, err := strconv.ParseUint(whole, 10, 64)
	if err != nil || sec > 315576000000 {
		return 0, fmt.Errorf("%q is not a duration like \"1.5s\"", s)
	}
	var nanos uint64
	if frac != "" {
		f, err := strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration like \"1.5s\"", s)
		}
		nanos = f
	}
	if sec > uint64(math.MaxInt64/int64(time.Second))-1 {
		// Valid, but longer than a time.Duration (292 years): as good
		// as forever.
		if neg {
			return math.MinInt64, nil
		}
		return math.MaxInt64, nil
	}
	d := time.Duration(sec)*time.Second + time.Duration(nanos)
	if neg {
		d = -d
	}
	return d, nil
}

// parseSize parses a message size: a JSON number or, as protobuf's JSON
// form of uint64 allows, a decimal string.
func parseSize(raw *json.RawMessage) (*int, error) {
	if raw == nil {
		return nil, nil
	}
	n, err := parseInt(*raw)
	if errors.Is(err, strconv.ErrRange) && !strings.Contains(string(*raw), "-") {
		// Larger than any message can be: no limit.
		n, err = math.MaxInt32, nil
	}
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%s is not a non-negative integer", *raw)
	}
	v := int(min(n, math.MaxInt32))
	return &v, nil
}

// parseInt parses a JSON integer given as a number or a decimal string.
func parseInt(raw json.RawMessage) (int64, error) {
	s := string(raw)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// parseCode parses a status code given by name ("UNAVAILABLE") or number.
func parseCode(raw json.RawMessage) (codes.Code, error) {
	if string(raw) == "null" {
		return 0, errors.New("null is not a status code")
	}
	var c codes.Code
	if err := c.UnmarshalJSON(raw); err != nil {
		return 0, err
	}
	return c, nil
}

// MethodConfig returns the method config for fullMethod
// ("/package.Service/Method" or "package.Service/Method"): the entry
// naming the method exactly, else the one naming its service, else the
// default entry (a name with neither service nor method); ok is false
// when none applies.
func (c *Config) MethodConfig(fullMethod string) (mc MethodConfig, ok bool) {
	if c == nil {
		return MethodConfig{}, false
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	best := 0
	for _, m := range c.Methods {
		for _, n := range m.Names {
			rank := 0
			switch {
			case n.Service == service && n.Method == method:
				rank = 3
			case n.Service == service && n.Method == "":
				rank = 2
			case n.Service == "" && n.Method == "":
				rank = 1
			}
			if rank > best {
				best, mc, ok = rank, m, true
			}
		}
	}
	return mc, ok
}
