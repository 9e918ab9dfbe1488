package codes

import (
	"encoding/json"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValues(t *testing.T) {
	// The numbers are fixed by the gRPC specification.
	want := []Code{OK, Canceled, Unknown, InvalidArgument, DeadlineExceeded, NotFound,
		AlreadyExists, PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted,
		OutOfRange, Unimplemented, Internal, Unavailable, DataLoss, Unauthenticated}
	for i, c := range want {
		if uint32(c) != uint32(i) {
			t.Errorf("%v = %d, want %d", c, uint32(c), i)
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		c    Code
		want string
	}{
		{OK, "OK"},
		{Canceled, "Canceled"},
		{Unknown, "Unknown"},
		{InvalidArgument, "InvalidArgument"},
		{DeadlineExceeded, "DeadlineExceeded"},
		{NotFound, "NotFound"},
		{AlreadyExists, "AlreadyExists"},
		{PermissionDenied, "PermissionDenied"},
		{ResourceExhausted, "ResourceExhausted"},
		{FailedPrecondition, "FailedPrecondition"},
		{Aborted, "Aborted"},
		{OutOfRange, "OutOfRange"},
		{Unimplemented, "Unimplemented"},
		{Internal, "Internal"},
		{Unavailable, "Unavailable"},
		{DataLoss, "DataLoss"},
		{Unauthenticated, "Unauthenticated"},
		{17, "Code(17)"},
		{4294967295, "Code(4294967295)"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Code(%d).String() = %q, want %q", uint32(tt.c), got, tt.want)
		}
	}
}

func TestMarshalJSON(t *testing.T) {
	tests := []struct {
		c    Code
		want string
	}{
		{OK, `"OK"`},
		{Canceled, `"CANCELLED"`},
		{InvalidArgument, `"INVALID_ARGUMENT"`},
		{Unauthenticated, `"UNAUTHENTICATED"`},
		{42, `42`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.c)
		if err != nil || string(b) != tt.want {
			t.Errorf("json.Marshal(%v) = %s, %v; want %s", tt.c, b, err, tt.want)
		}
	}
}

func TestUnmarshalJSON(t *testing.T) {
	tests := []struct {
		in   string
		want Code
	}{
		{`"OK"`, OK},
		{`"CANCELLED"`, Canceled},
		{`"DEADLINE_EXCEEDED"`, DeadlineExceeded},
		{`"UNAUTHENTICATED"`, Unauthenticated},
		{`5`, NotFound},
		{`"14"`, Unavailable},
		{`16`, Unauthenticated},
	}
	for _, tt := range tests {
		var c Code
		if err := json.Unmarshal([]byte(tt.in), &c); err != nil || c != tt.want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", tt.in, c, err, tt.want)
		}
	}
	for _, bad := range []string{`"Canceled"`, `"cancelled"`, `17`, `-1`, `1.5`, `""`, `"x"`, `true`, `99999999999`} {
		var c Code
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want error", bad, c)
		}
	}
	// null leaves the value alone.
	c := Internal
	if err := json.Unmarshal([]byte(`null`), &c); err != nil || c != Internal {
		t.Errorf("Unmarshal(null) = %v, %v; want Internal, nil", c, err)
	}
	var nilCode *Code
	if err := nilCode.UnmarshalJSON([]byte(`"OK"`)); err == nil {
		t.Error("UnmarshalJSON on nil *Code succeeded")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for c := Code(0); c < 20; c++ {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var got Code
		err = json.Unmarshal(b, &got)
		if c < maxCode {
			if err != nil || got != c {
				t.Errorf("round trip of %v via %s = %v, %v", c, b, got, err)
			}
		} else if err == nil {
			t.Errorf("round trip of undefined %v via %s succeeded", c, b)
		}
	}
	// In a struct, as a map value.
	type wrap struct{ Code Code }
	b, _ := json.Marshal(map[string]Code{"a": NotFound})
	if string(b) != `{"a":"NOT_FOUND"}` {
		t.Errorf("map marshal = %s", b)
	}
	var w wrap
	if err := json.Unmarshal([]byte(`{"Code":"ABORTED"}`), &w); err != nil || w.Code != Aborted {
		t.Errorf("struct unmarshal = %v, %v", w.Code, err)
	}
}
