package dns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

// txtAttribute starts the TXT record that holds the service config
// (an RFC 1464 attribute, whose name is case-insensitive).
const txtAttribute = "grpc_config="

// clientLanguage is this client's language for a choice's
// clientLanguage.
const clientLanguage = "go"

// choice is one service config choice of the TXT record (gRFC A2).
type choice struct {
	ClientLanguage []string        `json:"clientLanguage"`
	Percentage     json.RawMessage `json:"percentage"`
	ClientHostname []string        `json:"clientHostname"`
	ServiceConfig  json.RawMessage `json:"serviceConfig"`
}

// parseTXT finds the service config in the TXT records of
// "_grpc_config.<host>" (each record's strings already joined, as Go's
// resolver returns them) and parses the choice that applies to this
// client, on host hostname at percentile (0 to 99), with parse. It
// returns nil when there is no grpc_config record or no choice applies,
// and a result with an error wrapping serviceconfig.ErrInvalid when the
// record is malformed.
func parseTXT(records []string, hostname string, percentile int, parse func(string) *serviceconfig.ParseResult) *serviceconfig.ParseResult {
	var values []string
	for _, rec := range records {
		if len(rec) >= len(txtAttribute) && strings.EqualFold(rec[:len(txtAttribute)], txtAttribute) {
			values = append(values, rec[len(txtAttribute):])
		}
	}
	switch len(values) {
	case 0:
		return nil
	case 1:
	default:
		return invalidTXT(fmt.Errorf("%d grpc_config TXT records, want one", len(values)))
	}
	sc, err := selectChoice(values[0], hostname, percentile)
	if err != nil {
		return invalidTXT(err)
	}
	if sc == nil {
		return nil
	}
	return parse(string(sc))
}

func invalidTXT(err error) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{Err: fmt.Errorf("%w: DNS TXT record: %v", serviceconfig.ErrInvalid, err)}
}

// selectChoice parses the value of a grpc_config attribute, a JSON list
// of choices, and returns the service config of the first one that
// applies to this client, or nil when none does. Any invalid choice
// makes the whole value invalid (gRFC A2).
func selectChoice(value, hostname string, percentile int) (json.RawMessage, error) {
	var raws []json.RawMessage
	if !bytes.HasPrefix(bytes.TrimLeft([]byte(value), " \t\r\n"), []byte("[")) {
		return nil, errors.New("grpc_config is not a JSON list")
	}
	if err := json.Unmarshal([]byte(value), &raws); err != nil {
		return nil, fmt.Errorf("grpc_config is not a JSON list: %v", err)
	}
	var selected json.RawMessage
	for i, raw := range raws {
		c, err := parseChoice(raw)
		if err != nil {
			return nil, fmt.Errorf("choice %d: %v", i, err)
		}
		if selected == nil && c.applies(hostname, percentile) {
			selected = c.ServiceConfig
		}
	}
	return selected, nil
}

func parseChoice(raw json.RawMessage) (choice, error) {
	var c choice
	if !bytes.HasPrefix(raw, []byte("{")) {
		return c, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	if !bytes.HasPrefix(c.ServiceConfig, []byte("{")) {
		return c, errors.New("serviceConfig is missing or not a JSON object")
	}
	if string(c.Percentage) == "null" {
		c.Percentage = nil // as if absent
	}
	if c.Percentage != nil {
		p, err := strconv.Atoi(string(c.Percentage))
		if err != nil || p < 0 || p > 100 {
			return c, fmt.Errorf("percentage %s is not an integer from 0 to 100", c.Percentage)
		}
	}
	return c, nil
}

// applies reports whether the choice selects this client: every
// criterion given matches.
func (c choice) applies(hostname string, percentile int) bool {
	if len(c.ClientLanguage) > 0 && !slices.ContainsFunc(c.ClientLanguage, func(l string) bool { return strings.EqualFold(l, clientLanguage) }) {
		return false
	}
	if c.Percentage != nil {
		p, _ := strconv.Atoi(string(c.Percentage)) // checked by parseChoice
		if percentile >= p {
			return false
		}
	}
	if len(c.ClientHostname) > 0 && !slices.Contains(c.ClientHostname, hostname) {
		return false
	}
	return true
}
