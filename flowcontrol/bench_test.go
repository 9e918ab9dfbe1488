package flowcontrol

import (
	"context"
	"testing"
)

func BenchmarkInFlowDataRead(b *testing.B) {
	f := NewInFlow(DefaultWindowSize)
	b.ReportAllocs()
	for b.Loop() {
		if err := f.OnData(1024); err != nil {
			b.Fatal(err)
		}
		f.OnRead(1024)
	}
}

func BenchmarkTrInFlowData(b *testing.B) {
	f := NewTrInFlow(DefaultWindowSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.OnData(1024); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteQuotaGetReplenish(b *testing.B) {
	w := NewWriteQuota(1<<16, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Get(ctx, 1024); err != nil {
			b.Fatal(err)
		}
		w.Replenish(1024)
	}
}
