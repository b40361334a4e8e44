package torch_test

import (
	"testing"

	"github.com/blockllm/blockllm-go/torch"
)

// BenchmarkMatmul2048 reports GFLOP/s of a 2048x2048 f32 matmul (2*n^3 flops).
func BenchmarkMatmul2048(b *testing.B) {
	s := torch.NewScope()
	defer s.Close()
	const n = 2048
	g := torch.NewGenerator(1, testDevice)
	defer g.Close()
	x := s.Randn([]int64{n, n}, torch.F32, testDevice, g)
	y := s.Randn([]int64{n, n}, torch.F32, testDevice, g)
	w := torch.NewScope()
	defer w.Close()
	w.In(x).Matmul(y) // warm up
	torch.Synchronize(testDevice)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.In(x).Matmul(y)
		torch.Synchronize(testDevice)
		w.Reset()
	}
	b.StopTimer()
	b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkTinyOp measures the overhead of one op call through cgo on a 1-element tensor
// (result creation and free included).
func BenchmarkTinyOp(b *testing.B) {
	s := torch.NewScope()
	defer s.Close()
	x := s.Ones([]int64{1}, torch.F32, torch.CPU)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.AddScalar(1).Free()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/op")
}

// BenchmarkTinyInPlace measures an in-place op (no result handle) through cgo.
func BenchmarkTinyInPlace(b *testing.B) {
	s := torch.NewScope()
	defer s.Close()
	x := s.Ones([]int64{1}, torch.F32, torch.CPU)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.AddScalarInPlace(1)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/op")
}

// BenchmarkCgoCall measures a bare call across the cgo boundary (no libtorch op).
func BenchmarkCgoCall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		torch.LiveTensors()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "us/op")
}
