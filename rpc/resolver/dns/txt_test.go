package dns

import (
	"errors"
	"testing"

	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

// parseConfig parses as a channel does.
func parseConfig(js string) *serviceconfig.ParseResult {
	c, err := serviceconfig.Parse(js)
	return &serviceconfig.ParseResult{Config: c, Err: err}
}

func TestParseTXTSelectsTheFirstChoiceForThisClient(t *testing.T) {
	const (
		a    = `{"loadBalancingPolicy":"round_robin"}`
		b    = `{"loadBalancingPolicy":"pick_first"}`
		host = "client-7"
	)
	for _, tc := range []struct {
		desc       string
		records    []string
		percentile int
		want       string // the selected service config, "" for none
	}{
		{desc: "no records"},
		{desc: "no grpc_config record", records: []string{"v=spf1 -all", "grpc_configuration=[]"}},
		{desc: "one choice", records: []string{`grpc_config=[{"serviceConfig":` + a + `}]`}, want: a},
		{desc: "among other records", records: []string{"v=spf1 -all", `grpc_config=[{"serviceConfig":` + a + `}]`}, want: a},
		{desc: "attribute name in any case", records: []string{`GRPC_Config=[{"serviceConfig":` + a + `}]`}, want: a},
		{desc: "empty list", records: []string{`grpc_config=[]`}},
		{desc: "white space", records: []string{"grpc_config= [ {\"serviceConfig\" : " + a + "} ]\n"}, want: a},
		{desc: "first match wins", records: []string{`grpc_config=[{"clientLanguage":["java"],"serviceConfig":` + a + `},{"serviceConfig":` + b + `},{"serviceConfig":` + a + `}]`}, want: b},
		{desc: "language in any case", records: []string{`grpc_config=[{"clientLanguage":["c++","GO"],"serviceConfig":` + a + `}]`}, want: a},
		{desc: "empty language list matches", records: []string{`grpc_config=[{"clientLanguage":[],"serviceConfig":` + a + `}]`}, want: a},
		{desc: "other languages only", records: []string{`grpc_config=[{"clientLanguage":["java","python"],"serviceConfig":` + a + `}]`}},
		{desc: "this host", records: []string{`grpc_config=[{"clientHostname":["other","client-7"],"serviceConfig":` + a + `}]`}, want: a},
		{desc: "host names are case-sensitive", records: []string{`grpc_config=[{"clientHostname":["CLIENT-7"],"serviceConfig":` + a + `}]`}},
		{desc: "inside the percentage", records: []string{`grpc_config=[{"percentage":50,"serviceConfig":` + a + `}]`}, percentile: 49, want: a},
		{desc: "outside the percentage", records: []string{`grpc_config=[{"percentage":50,"serviceConfig":` + a + `},{"serviceConfig":` + b + `}]`}, percentile: 50, want: b},
		{desc: "percentage 0 selects nobody", records: []string{`grpc_config=[{"percentage":0,"serviceConfig":` + a + `}]`}},
		{desc: "percentage 100 selects everybody", records: []string{`grpc_config=[{"percentage":100,"serviceConfig":` + a + `}]`}, percentile: 99, want: a},
		{desc: "null percentage is absent", records: []string{`grpc_config=[{"percentage":null,"serviceConfig":` + a + `}]`}, percentile: 99, want: a},
		{desc: "all criteria", records: []string{`grpc_config=[{"clientLanguage":["go"],"percentage":10,"clientHostname":["client-7"],"serviceConfig":` + a + `}]`}, percentile: 9, want: a},
	} {
		got := parseTXT(tc.records, host, tc.percentile, parseConfig)
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("%s: %+v, want no service config", tc.desc, got)
		case tc.want == "":
		case got == nil || got.Err != nil || got.Config.Raw != tc.want:
			t.Errorf("%s: %+v, want the service config %s", tc.desc, got, tc.want)
		}
	}
}

func TestParseTXTRejectsMalformedRecords(t *testing.T) {
	for _, tc := range []struct{ desc, value string }{
		{"empty", ``},
		{"not JSON", `round_robin`},
		{"truncated", `[{"serviceConfig":{}`},
		{"an object, not a list", `{"serviceConfig":{}}`},
		{"null", `null`},
		{"data after the list", `[{"serviceConfig":{}}] x`},
		{"a choice that is not an object", `[1]`},
		{"a null choice", `[null]`},
		{"unknown field", `[{"serviceConfig":{},"clientLanguages":["go"]}]`},
		{"unknown field in a later choice", `[{"serviceConfig":{}},{"serviceConfig":{},"x":1}]`},
		{"no serviceConfig", `[{"clientLanguage":["go"]}]`},
		{"null serviceConfig", `[{"serviceConfig":null}]`},
		{"serviceConfig a string", `[{"serviceConfig":"{}"}]`},
		{"serviceConfig a list", `[{"serviceConfig":[]}]`},
		{"clientLanguage a string", `[{"clientLanguage":"go","serviceConfig":{}}]`},
		{"clientHostname of numbers", `[{"clientHostname":[1],"serviceConfig":{}}]`},
		{"percentage below 0", `[{"percentage":-1,"serviceConfig":{}}]`},
		{"percentage above 100", `[{"percentage":101,"serviceConfig":{}}]`},
		{"fractional percentage", `[{"percentage":50.5,"serviceConfig":{}}]`},
		{"percentage with an exponent", `[{"percentage":5e1,"serviceConfig":{}}]`},
		{"percentage a string", `[{"percentage":"50","serviceConfig":{}}]`},
		{"a bad service config", `[{"serviceConfig":{"methodConfig":[{"timeout":"soon"}]}}]`},
	} {
		got := parseTXT([]string{"grpc_config=" + tc.value}, "h", 0, parseConfig)
		if got == nil || got.Config != nil || !errors.Is(got.Err, serviceconfig.ErrInvalid) {
			t.Errorf("%s: %+v, want an error wrapping serviceconfig.ErrInvalid", tc.desc, got)
		}
	}
	two := []string{`grpc_config=[{"serviceConfig":{}}]`, `grpc_config=[]`}
	if got := parseTXT(two, "h", 0, parseConfig); got == nil || !errors.Is(got.Err, serviceconfig.ErrInvalid) {
		t.Errorf("two grpc_config records: %+v, want an error wrapping serviceconfig.ErrInvalid", got)
	}
}

func FuzzParseTXT(f *testing.F) {
	for _, seed := range []string{
		`[{"serviceConfig":{"loadBalancingPolicy":"round_robin"}}]`,
		`[{"clientLanguage":["go"],"percentage":10,"clientHostname":["h"],"serviceConfig":{"methodConfig":[{"name":[{"service":"s"}],"timeout":"1s"}]}}]`,
		`[{"percentage":50.5,"serviceConfig":{}}]`,
		`[{"serviceConfig":{},"x":1}]`,
		`[null]`,
		`[]`,
		`{`,
	} {
		f.Add(seed, "h", uint8(5))
	}
	f.Fuzz(func(t *testing.T, value, hostname string, percentile uint8) {
		for _, rec := range []string{value, "grpc_config=" + value} {
			got := parseTXT([]string{rec}, hostname, int(percentile%100), parseConfig)
			if got == nil {
				continue
			}
			if (got.Config == nil) == (got.Err == nil) {
				t.Fatalf("parseTXT(%q): config %v and error %v, want exactly one", rec, got.Config, got.Err)
			}
			if got.Err != nil && !errors.Is(got.Err, serviceconfig.ErrInvalid) {
				t.Fatalf("parseTXT(%q): error %v does not wrap serviceconfig.ErrInvalid", rec, got.Err)
			}
		}
	})
}
