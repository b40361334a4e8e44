package torch_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/torch"
)

// TestConcurrentOps runs mixed ops from 8 goroutines, a third of them failing on purpose,
// and checks every result and every error message. Errors come back per call (no
// thread-local "last error"), so goroutines that change OS threads get their own.
func TestConcurrentOps(t *testing.T) {
	const workers, iters = 8, 1000
	before := torch.LiveTensors()
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < iters; i++ {
				if i%97 == 0 {
					runtime.Gosched()
				}
				err := torch.WithScope(func(s *torch.Scope) error {
					a := s.Full([]int64{2, 3}, float64(w), torch.F32, testDevice)
					b := s.Full([]int64{3, 2}, float64(i%7), torch.F32, testDevice)
					switch i % 3 {
					case 0:
						got := a.Matmul(b).Sum().Item()
						if want := float64(4 * 3 * w * (i % 7)); got != want {
							return fmt.Errorf("worker %d iter %d: matmul sum %v, want %v", w, i, got, want)
						}
					case 1:
						got := a.AddScalar(float64(i)).Mean().Item()
						if want := float64(w + i); got != want {
							return fmt.Errorf("worker %d iter %d: mean %v, want %v", w, i, got, want)
						}
					case 2:
						err := torch.Try(func() { a.Matmul(a) })
						if err == nil || !assert.ObjectsAreEqual("matmul", err.(*torch.Error).Op) {
							return fmt.Errorf("worker %d iter %d: expected a matmul error, got %v", w, i, err)
						}
						if want := "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)"; !contains(err.Error(), want) {
							return fmt.Errorf("worker %d iter %d: error %q lacks %q", w, i, err, want)
						}
						err = torch.Try(func() { a.View(int64(7 + w)) })
						if want := fmt.Sprintf("shape '[%d]' is invalid for input of size 6", 7+w); err == nil || !contains(err.Error(), want) {
							return fmt.Errorf("worker %d iter %d: error %v lacks %q", w, i, err, want)
						}
					}
					return nil
				})
				if err != nil {
					errs <- err.Error()
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	assert.Equal(t, before, torch.LiveTensors(), "every handle made by the workers was freed")
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestScopeFreesHandles checks that live handles return to their starting count when a
// scope closes, also when an op inside failed, and that MoveTo/Free/Reset behave.
func TestScopeFreesHandles(t *testing.T) {
	before := torch.LiveTensors()
	err := torch.WithScope(func(s *torch.Scope) error {
		a := s.Ones([]int64{4, 4}, torch.F32, testDevice)
		b := a.Matmul(a).Relu().Sum()
		assert.Equal(t, 64.0, b.Item())
		assert.Equal(t, before+4, torch.LiveTensors())
		a.Matmul(s.Ones([]int64{3}, torch.F32, testDevice)) // fails: panics inside WithScope
		return nil
	})
	require.Error(t, err)
	assert.Equal(t, before, torch.LiveTensors(), "failed op: scope still freed everything")

	store := torch.NewStore("kept")
	s := torch.NewScope()
	kept := s.Full([]int64{3}, 2, torch.F32, testDevice).MoveTo(store)
	tmp := s.Ones([]int64{3}, torch.F32, testDevice)
	tmp.Free()
	assert.False(t, tmp.Valid())
	s.Ones([]int64{3}, torch.F32, testDevice)
	assert.Equal(t, 1, s.Len())
	s.Reset()
	assert.Equal(t, 0, s.Len())
	s.Close()
	s.Close() // idempotent
	assert.True(t, kept.Valid())
	assert.Equal(t, []float64{2, 2, 2}, kept.Float64s())
	assert.Equal(t, before+1, torch.LiveTensors())
	store.Close()
	assert.Equal(t, before, torch.LiveTensors())
}

// TestMemoryAccounting checks the CPU counting allocator and live-tensor bytes.
func TestMemoryAccounting(t *testing.T) {
	if testDevice.IsCUDA() {
		t.Skip("CPU allocator test")
	}
	s := torch.NewScope()
	defer s.Close()
	base := torch.LiveTensorBytes(torch.CPU)
	cur0, _ := torch.MemStats(torch.CPU)
	torch.ResetPeakMemory(torch.CPU)
	a := s.Zeros([]int64{1 << 20}, torch.F32, torch.CPU) // 4 MiB
	_ = a.View(1024, 1024)                               // a view shares the storage
	assert.Equal(t, base+4<<20, torch.LiveTensorBytes(torch.CPU))
	cur1, _ := torch.MemStats(torch.CPU)
	assert.GreaterOrEqual(t, cur1-cur0, int64(4<<20))
	b := s.Zeros([]int64{1 << 21}, torch.F32, torch.CPU) // 8 MiB
	_, peak := torch.MemStats(torch.CPU)
	assert.GreaterOrEqual(t, peak-cur0, int64(12<<20))
	b.Free()
	cur2, peak2 := torch.MemStats(torch.CPU)
	assert.Equal(t, cur1, cur2, "freed storage returns to the allocator")
	assert.Equal(t, peak, peak2, "peak stays until reset")
	torch.ResetPeakMemory(torch.CPU)
	_, peak3 := torch.MemStats(torch.CPU)
	assert.Equal(t, cur2, peak3)
}
