package blockllm

import (
	"fmt"
	"testing"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// BenchmarkLoRAPath compares two ways of applying LoRA (r 8 on every linear layer) in
// a forward and backward pass of a Llama (hidden 1024, MLP 2752, 2 layers, vocabulary
// 1024) on batch x 256 tokens: "adapter", the path LoRA takes (x·Wᵀ + s·(x·Aᵀ)·Bᵀ through
// nn.Params.Linear, as peft's lora.Linear), and "merged-hook", a parameter hook
// substituting W + s·B·A (no model change, but no dropout on the adapter input, a
// merged weight kept per layer for backward and the full weight gradient made per
// layer). It reports ms per pass and the allocator peak above the resident tensors.
func BenchmarkLoRAPath(b *testing.B) {
	c, err := config.ParseLlama([]byte(`{"hidden_size": 1024, "intermediate_size": 2752, "num_hidden_layers": 2,
		"num_attention_heads": 16, "vocab_size": 1024, "max_position_embeddings": 256, "rms_norm_eps": 1e-6}`))
	if err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 8} {
		for _, path := range []string{"adapter", "merged-hook"} {
			b.Run(fmt.Sprintf("batch%d/%s", batch, path), func(b *testing.B) {
				m, err := llama.New(c, llama.Options{Device: testDevice}, 1)
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				o, err := NewLoRA(m, LoRAConfig{Targets: []string{AllLinear}})
				if err != nil {
					b.Fatal(err)
				}
				defer o.Close()
				if path == "merged-hook" {
					m.SetAdapter(nil)
					m.SetHook(func(s *torch.Scope, p *nn.Param) *torch.Tensor {
						if x := o.byBase[p]; x != nil {
							return s.In(p.T).Add(s.In(x.b.T).Matmul(x.a.T).MulScalar(o.scale))
						}
						return p.T
					})
				}
				if err := SetTrainable(m.Parameters(), o.Trainable()); err != nil {
					b.Fatal(err)
				}
				data, _ := NewRandomTokens(c.VocabSize, batch, 256, 1, testDevice)
				pass := func() {
					err := torch.WithScope(func(s *torch.Scope) error {
						bt, err := data.Next(s)
						if err != nil {
							return err
						}
						out, err := m.Forward(s, bt, true)
						if err != nil {
							return err
						}
						out.Loss.Backward()
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
					for _, p := range o.Trainable() {
						p.T.ZeroGrad(true)
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
				b.ReportMetric(float64(peak-cur)/(1<<20), "peak-MiB")
			})
		}
	}
}
