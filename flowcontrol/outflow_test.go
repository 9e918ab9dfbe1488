package flowcontrol

import (
	"errors"
	"testing"
)

func TestOutFlowDefaults(t *testing.T) {
	o := NewOutFlow()
	if got := o.ConnQuota(); got != int64(DefaultWindowSize) {
		t.Fatalf("ConnQuota() = %d, want %d", got, DefaultWindowSize)
	}
	if got := o.InitialWindow(); got != int64(DefaultWindowSize) {
		t.Fatalf("InitialWindow() = %d, want %d", got, DefaultWindowSize)
	}
	var s StreamOut
	if got := o.StreamQuota(&s); got != int64(DefaultWindowSize) {
		t.Fatalf("StreamQuota(new) = %d, want %d", got, DefaultWindowSize)
	}
}

func TestOutFlowConsumeAndAdd(t *testing.T) {
	o := NewOutFlow()
	var s StreamOut
	s.Consume(1000)
	o.ConsumeConn(1000)
	if got := o.StreamQuota(&s); got != 64535 {
		t.Fatalf("StreamQuota = %d, want 64535", got)
	}
	if got := o.ConnQuota(); got != 64535 {
		t.Fatalf("ConnQuota = %d, want 64535", got)
	}
	if err := o.AddStream(&s, 500); err != nil {
		t.Fatalf("AddStream: %v", err)
	}
	if err := o.AddConn(1000); err != nil {
		t.Fatalf("AddConn: %v", err)
	}
	if got := o.StreamQuota(&s); got != 65035 {
		t.Fatalf("StreamQuota = %d, want 65035", got)
	}
	if got := o.ConnQuota(); got != 65535 {
		t.Fatalf("ConnQuota = %d, want 65535", got)
	}
}

// TestOutFlowSettingsAdjustsEveryStream checks RFC 9113 §6.9.2: a new
// SETTINGS_INITIAL_WINDOW_SIZE moves every stream's window by the
// difference, possibly below zero, and WINDOW_UPDATEs bring it back.
func TestOutFlowSettingsAdjustsEveryStream(t *testing.T) {
	o := NewOutFlow()
	var a, b, c StreamOut
	a.Consume(60000)
	b.Consume(10000)
	// c sent nothing.

	if err := o.SetInitialWindow(20000); err != nil {
		t.Fatalf("SetInitialWindow: %v", err)
	}
	for _, tc := range []struct {
		name string
		s    *StreamOut
		want int64
	}{
		{"a", &a, 20000 - 60000},
		{"b", &b, 10000},
		{"c", &c, 20000},
	} {
		if got := o.StreamQuota(tc.s); got != tc.want {
			t.Errorf("after shrink: StreamQuota(%s) = %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := o.ConnQuota(); got != int64(DefaultWindowSize) {
		t.Errorf("SETTINGS changed the connection window: %d", got)
	}

	// The peer refunds a's data: still 0, then positive.
	if err := o.AddStream(&a, 40000); err != nil {
		t.Fatalf("AddStream: %v", err)
	}
	if got := o.StreamQuota(&a); got != 0 {
		t.Fatalf("StreamQuota(a) = %d, want 0", got)
	}
	if err := o.AddStream(&a, 1); err != nil {
		t.Fatalf("AddStream: %v", err)
	}
	if got := o.StreamQuota(&a); got != 1 {
		t.Fatalf("StreamQuota(a) = %d, want 1", got)
	}

	// Growing the initial window grows every stream.
	if err := o.SetInitialWindow(100000); err != nil {
		t.Fatalf("SetInitialWindow: %v", err)
	}
	if got := o.StreamQuota(&b); got != 90000 {
		t.Errorf("after growth: StreamQuota(b) = %d, want 90000", got)
	}
	if got := o.StreamQuota(&c); got != 100000 {
		t.Errorf("after growth: StreamQuota(c) = %d, want 100000", got)
	}
}

func TestOutFlowOverflow(t *testing.T) {
	o := NewOutFlow()
	if err := o.AddConn(MaxWindowSize - DefaultWindowSize); err != nil {
		t.Fatalf("AddConn to the maximum: %v", err)
	}
	err := o.AddConn(1)
	if !errors.Is(err, ErrFlowControl) {
		t.Fatalf("AddConn past the maximum = %v, want ErrFlowControl", err)
	}
	if got := o.ConnQuota(); got != int64(MaxWindowSize) {
		t.Fatalf("failed AddConn changed the window to %d", got)
	}

	var s StreamOut
	if err := o.AddStream(&s, MaxWindowSize-DefaultWindowSize); err != nil {
		t.Fatalf("AddStream to the maximum: %v", err)
	}
	err = o.AddStream(&s, 1)
	if !errors.Is(err, ErrFlowControl) {
		t.Fatalf("AddStream past the maximum = %v, want ErrFlowControl", err)
	}
	if got := o.StreamQuota(&s); got != int64(MaxWindowSize) {
		t.Fatalf("failed AddStream changed the window to %d", got)
	}

	// A stream with data in flight may take a larger increment.
	var busy StreamOut
	busy.Consume(1000)
	if err := o.AddStream(&busy, MaxWindowSize-DefaultWindowSize+1000); err != nil {
		t.Fatalf("AddStream: %v", err)
	}

	err = o.SetInitialWindow(MaxWindowSize + 1)
	if !errors.Is(err, ErrFlowControl) {
		t.Fatalf("SetInitialWindow(2^31) = %v, want ErrFlowControl", err)
	}
	if got := o.InitialWindow(); got != int64(DefaultWindowSize) {
		t.Fatalf("failed SetInitialWindow changed it to %d", got)
	}
	if err := o.SetInitialWindow(MaxWindowSize); err != nil {
		t.Fatalf("SetInitialWindow(2^31-1): %v", err)
	}
	// s had a window of 2^31-1 at initial 65535; the new initial window
	// pushes it past the maximum, which the caller detects.
	if got := o.StreamQuota(&s); got <= int64(MaxWindowSize) {
		t.Fatalf("StreamQuota(s) = %d, want > MaxWindowSize", got)
	}
}
