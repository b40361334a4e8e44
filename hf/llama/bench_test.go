package llama

import (
	"context"
	"fmt"
	"testing"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/generate"
	"github.com/blockllm/blockllm-go/torch"
)

// BenchmarkGenerate measures greedy generation of 128 tokens after a 32-token prompt,
// with the KV cache and recomputing the whole sequence each step, side by side, on
// the tiny fixture and on random llama-tiny and llama-20m presets (f32 on the CPU;
// on BLOCKLLM_DEVICE=cuda in bf16 with fused attention, and llama-1b too). It reports
// tokens/s over the whole call (prompt included) and the decode rate after the prompt.
func BenchmarkGenerate(b *testing.B) {
	opts, _ := testOpts(b)
	presets := []string{"llama-tiny", "llama-20m"}
	if opts.Device.IsCUDA() {
		opts.DType = torch.BF16
		presets = append(presets, "llama-1b")
	}
	type model struct {
		name string
		load func() (*Model, error)
	}
	models := []model{
		{"fixture", func() (*Model, error) { return Load(tinyDir, opts) }},
	}
	for _, p := range presets {
		models = append(models, model{p, func() (*Model, error) {
			c, err := config.LlamaPreset(p)
			if err != nil {
				return nil, err
			}
			o := opts
			o.InitOnDevice = true
			return New(c, o, 1)
		}})
	}
	const promptLen, newTokens = 32, 128
	for _, mm := range models {
		m, err := mm.load()
		if err != nil {
			b.Fatal(err)
		}
		prompt := make([]int, promptLen)
		for i := range prompt {
			prompt[i] = 3 + (i*37)%(m.Cfg.VocabSize-3)
		}
		for _, noCache := range []bool{false, true} {
			name := "cache"
			if noCache {
				name = "recompute"
			}
			b.Run(fmt.Sprintf("%s/%s", mm.name, name), func(b *testing.B) {
				var decode float64
				for b.Loop() {
					sess, err := m.NewSession(SessionOptions{NoCache: noCache, Capacity: promptLen + newTokens})
					if err != nil {
						b.Fatal(err)
					}
					r, err := generate.Generate(context.Background(), sess, prompt, generate.Options{MaxNewTokens: newTokens})
					sess.Close()
					if err != nil {
						b.Fatal(err)
					}
					if len(r.Tokens) != newTokens {
						b.Fatalf("%d tokens", len(r.Tokens))
					}
					decode += r.DecodeTokensPerSecond()
				}
				b.ReportMetric(float64(newTokens*b.N)/b.Elapsed().Seconds(), "tokens/s")
				b.ReportMetric(decode/float64(b.N), "decode-tokens/s")
			})
		}
		m.Close()
	}
}
