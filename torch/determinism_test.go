package torch_test

import (
	"bytes"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/torch"
)

// onFreshOSThread runs f on a new OS thread and ends that thread afterwards (a goroutine
// that returns while locked to its thread takes the thread with it), as when the Go
// scheduler moves a goroutine to another thread between two cgo calls.
func onFreshOSThread(f func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(done)
		f()
	}()
	<-done
}

// TestGradOrderAcrossOSThreads: a tensor used by three ops gets the sum of three
// gradient contributions, in the order autograd runs the three nodes. libtorch orders
// nodes by a sequence number counted per OS thread; recording one of the three ops on
// another thread (a fresh one, whose counter would start at 0) must not change that
// order, so the gradient is the same, bit for bit, as when all ops run on one thread.
func TestGradOrderAcrossOSThreads(t *testing.T) {
	g := torch.NewGenerator(11, torch.CPU)
	defer g.Close()
	st := torch.NewScope()
	defer st.Close()
	const n = 4096
	x0 := st.Randn([]int64{n}, torch.F32, torch.CPU, g).ToDevice(torch.F32, testDevice)
	// scales of different magnitudes: (c2 + c1) + c0 and (c1 + c0) + c2 differ in many elements
	var c [3]*torch.Tensor
	for i, scale := range []float64{1e3, 1, 1e-3} {
		c[i] = st.Randn([]int64{n}, torch.F32, torch.CPU, g).MulScalar(scale).ToDevice(torch.F32, testDevice)
	}
	grad := func(other int) []byte { // other: the op recorded on a fresh OS thread (-1: none)
		s := torch.NewScope()
		defer s.Close()
		x := s.In(x0).Detach().SetRequiresGrad(true)
		a := x.MulScalar(1)
		var b [3]*torch.Tensor
		for i := range b {
			rec := func() { b[i] = a.Mul(s.In(c[i])).Sum() }
			if i == other {
				onFreshOSThread(rec)
			} else {
				rec()
			}
		}
		b[0].Add(b[1]).Add(b[2]).Backward()
		return x.GradIn(s).Bytes()
	}
	want := grad(-1)
	// the gradient is c0 + c1 + c2 in some order: check it is that sum, to rounding
	sum := st.In(c[0]).Add(c[1]).Add(c[2]).Float64s()
	var got64 []float64
	for _, v := range torch.Float32sFromBytes(want) {
		got64 = append(got64, float64(v))
	}
	assert.InDeltaSlice(t, sum, got64, 1e-3)
	for _, other := range []int{1, 2} {
		for rep := 0; rep < 3; rep++ {
			got := grad(other)
			assert.True(t, bytes.Equal(want, got), "op %d recorded on another OS thread (try %d): the gradient differs", other, rep)
		}
	}
}

// TestNumThreadsEveryOSThread: SetNumThreads applies to every OS thread, including one
// that ran a parallel op before (libtorch's own setting changes only the calling
// thread's OpenMP count and the count of threads that have not run one yet).
func TestNumThreadsEveryOSThread(t *testing.T) {
	prev := torch.NumThreads()
	defer torch.SetNumThreads(prev)
	torch.SetNumThreads(1)
	ready, set, done := make(chan int), make(chan struct{}), make(chan int)
	go func() {
		runtime.LockOSThread() // this goroutine's thread stays its own; it ends with it
		ready <- torch.NumThreads()
		<-set
		done <- torch.NumThreads()
	}()
	require.Equal(t, 1, <-ready)
	torch.SetNumThreads(3) // from another OS thread than the worker's
	close(set)
	assert.Equal(t, 3, <-done, "the worker thread's count follows SetNumThreads")
	assert.Equal(t, 3, torch.NumThreads())
}

// TestDeterministicMode: SetDeterministic turns libtorch's mode on and off and, when on,
// provides the cuBLAS workspace setting unless the environment has one.
func TestDeterministicMode(t *testing.T) {
	require.False(t, torch.Deterministic(), "off by default")
	prev, had := os.LookupEnv("CUBLAS_WORKSPACE_CONFIG")
	os.Unsetenv("CUBLAS_WORKSPACE_CONFIG")
	defer func() {
		torch.SetDeterministic(false, false)
		if had {
			os.Setenv("CUBLAS_WORKSPACE_CONFIG", prev)
		} else {
			os.Unsetenv("CUBLAS_WORKSPACE_CONFIG")
		}
	}()
	torch.SetDeterministic(true, false)
	assert.True(t, torch.Deterministic())
	assert.Equal(t, ":4096:8", os.Getenv("CUBLAS_WORKSPACE_CONFIG"))
	os.Setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
	torch.SetDeterministic(true, true)
	assert.Equal(t, ":16:8", os.Getenv("CUBLAS_WORKSPACE_CONFIG"), "the user's setting stays")
	// a training-style op mix still runs in the mode
	s := torch.NewScope()
	defer s.Close()
	g := torch.NewGenerator(2, torch.CPU)
	defer g.Close()
	w := s.Randn([]int64{8, 4}, torch.F32, torch.CPU, g).ToDevice(torch.F32, testDevice).Detach().SetRequiresGrad(true)
	ids := s.FromInt64([]int64{1, 3, 3, 7}, 4).ToDevice(torch.I64, testDevice)
	torch.Embedding(w, ids).Square().Sum().Backward()
	assert.Equal(t, []int64{8, 4}, w.GradIn(s).Shape())
	torch.SetDeterministic(false, false)
	assert.False(t, torch.Deterministic())
}
