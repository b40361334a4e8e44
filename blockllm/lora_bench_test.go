package blockllm

import (
	"fmt"
	"testing"

	"github.com/blockllm/blockllm-go/torch"
)

// BenchmarkLoRAPath compares the two ways of applying a LoRA adapter to one linear layer
// [d, d] on 2048 tokens (rank 8), forward and backward with the input requiring grad (an
// inner layer): "adapter", the path LoRA takes (x·Wᵀ + s·(x·Aᵀ)·Bᵀ through nn.Params.Linear,
// as peft's lora.Linear), and "merged-hook", a parameter hook substituting W + s·B·A
// (no model change, but no dropout on the adapter input, a d x d temporary kept for
// backward and a full d x d weight gradient per layer). It reports ms per pass and the
// allocator peak above the inputs.
func BenchmarkLoRAPath(b *testing.B) {
	const tokens, r = 2048, 8
	for _, d := range []int64{1024, 2048} {
		for _, path := range []string{"adapter", "merged-hook"} {
			b.Run(fmt.Sprintf("d%d/%s", d, path), func(b *testing.B) {
				st := torch.NewStore("bench-lora")
				defer st.Close()
				g := torch.NewGenerator(1, torch.CPU)
				defer g.Close()
				w := st.Randn([]int64{d, d}, torch.F32, testDevice, nil)
				a := st.Randn([]int64{r, d}, torch.F32, testDevice, nil).SetRequiresGrad(true)
				bb := st.Randn([]int64{d, r}, torch.F32, testDevice, nil).SetRequiresGrad(true)
				x := st.Randn([]int64{tokens, d}, torch.F32, testDevice, nil).SetRequiresGrad(true)
				pass := func() {
					s := torch.NewScope()
					defer s.Close()
					xs := s.In(x)
					var y *torch.Tensor
					if path == "adapter" {
						y = xs.Linear(w, nil).Add(xs.Linear(a, nil).Linear(bb, nil).MulScalar(2))
					} else {
						y = xs.Linear(s.In(w).Add(s.In(bb).Matmul(a).MulScalar(2)), nil)
					}
					y.Sum().Backward()
					for _, t := range []*torch.Tensor{a, bb, x} {
						t.ZeroGrad(true)
					}
				}
				pass()
				torch.Synchronize(testDevice)
				cur, _ := torch.MemStats(testDevice)
				torch.ResetPeakMemory(testDevice)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					pass()
				}
				torch.Synchronize(testDevice)
				_, peak := torch.MemStats(testDevice)
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/pass")
				b.ReportMetric(float64(peak-cur), "peak-bytes")
			})
		}
	}
}
