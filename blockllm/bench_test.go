package blockllm

import (
	"path/filepath"
	"testing"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/torch"
)

// benchModel is the llama-tiny fixture's config (64 hidden, 2 layers, vocab 1024) with
// random weights.
func benchModel(b *testing.B) *llama.Model {
	cfg, err := config.LoadLlama(filepath.Join(fixtureRoot(), "llama-tiny"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := llama.New(cfg, llama.Options{Device: testDevice}, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	return m
}

// BenchmarkTrainStep times one Trainer step (batch 8 x 64 tokens) per method and
// reports tokens/s and the optimizer state.
func BenchmarkTrainStep(b *testing.B) {
	for _, method := range []string{"adamw", "blockllm", "blockllm-mask", "badam", "lisa"} {
		b.Run(method, func(b *testing.B) {
			m := benchModel(b)
			o := newOpt(b, method, m)
			defer o.Close()
			data, _ := NewRandomTokens(m.Config().VocabSize, 8, 64, 1, testDevice)
			tr, err := NewTrainer(m, o, data, TrainConfig{Steps: b.N + 1, LR: 1e-3, MaxGradNorm: 1})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tr.Step(); err != nil { // selection and lazy state outside the timing
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tr.Step(); err != nil {
					b.Fatal(err)
				}
			}
			torch.Synchronize(testDevice)
			b.ReportMetric(float64(8*64*b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(o.StateBytes()), "state-bytes")
		})
	}
}

// BenchmarkSelectionPass times BlockLLM's probe pass (one forward/backward with every
// eligible tensor behind a norm probe) and the choice.
func BenchmarkSelectionPass(b *testing.B) {
	m := benchModel(b)
	o, err := NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.9})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	s := torch.NewScope()
	defer s.Close()
	data, _ := NewRandomTokens(m.Config().VocabSize, 8, 64, 1, testDevice)
	batch, _ := data.Next(s)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o.due = true
		if _, err := o.Prepare(batch); err != nil {
			b.Fatal(err)
		}
	}
}
