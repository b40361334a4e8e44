package cli

import (
	"fmt"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

// LlamaRun starts one method's run of a causal-LM command: it seeds libtorch's default
// generator, builds the model with load, checks that the tokenizer's ids and seqLen
// tokens (named by seqFlag in the error) fit the model, and builds mc's optimizer. The
// caller closes both; on an error nothing is left open.
func LlamaRun(seed uint64, load func() (*llama.Model, error), tok *tokenizer.Tokenizer, seqFlag string, seqLen int,
	mc blockllm.MethodConfig) (*llama.Model, blockllm.Optimizer, error) {
	if err := torch.Try(func() { torch.ManualSeed(seed) }); err != nil {
		return nil, nil, err
	}
	m, err := load()
	if err != nil {
		return nil, nil, err
	}
	if v := tok.VocabSize(); v > m.Cfg.VocabSize {
		m.Close()
		return nil, nil, fmt.Errorf("the tokenizer has %d ids but the model's vocab_size is %d", v, m.Cfg.VocabSize)
	}
	if seqLen > m.Cfg.MaxPositionEmbeddings {
		m.Close()
		return nil, nil, fmt.Errorf("%s %d exceeds the model's max_position_embeddings %d", seqFlag, seqLen, m.Cfg.MaxPositionEmbeddings)
	}
	opt, err := blockllm.NewOptimizer(m, mc)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, opt, nil
}
